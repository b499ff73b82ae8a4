// Asks the head at argv[2] (HOST:PORT) for its nodes twice, holding the
// cluster token (TSRAY_CLUSTER_TOKEN): once over ZeroMQ PLAIN with the
// token's password (what loopback peers use, unencrypted), once over CURVE.
// Prints "CURVE answered <n nodes>|refused" and "PLAIN answered|refused"
// (no answer within a second; the head logs why it refused).
const zmq = require('zeromq');
const { MT } = require('../../dist/internal/protocol/messages.js');
const { decodeFrame, encodeFrame, partsFrame } = require('../../dist/internal/protocol/codec.js');
const { deriveClusterKeys } = require('../../dist/internal/cluster/token.js');

async function ask(address, opts, ms) {
  const d = new zmq.Dealer({ linger: 0, receiveTimeout: ms, sendTimeout: ms, ...opts });
  d.connect(`tcp://${address}`);
  try {
    await d.send(encodeFrame([{ t: MT.GetClusterInfo, reqId: 1 }]));
    const { frame } = partsFrame(await d.receive());
    const [reply] = decodeFrame(frame).msgs;
    return reply && reply.ok ? reply.data : undefined;
  } catch (e) {
    if (e.code === 'EAGAIN') return undefined;
    throw e;
  } finally {
    d.close();
  }
}

async function main() {
  const address = process.argv[2];
  const keys = deriveClusterKeys(process.env.TSRAY_CLUSTER_TOKEN);
  const curve = await ask(address, { curveServerKey: keys.server.publicKey, curvePublicKey: keys.client.publicKey, curveSecretKey: keys.client.secretKey }, 10_000);
  console.log(`CURVE ${curve ? `answered ${curve.length} nodes` : 'refused'}`);
  const plain = await ask(address, { plainUsername: 'tsray', plainPassword: keys.client.secretKey }, 1000);
  console.log(`PLAIN ${plain ? 'answered' : 'refused'}`);
}

main().catch((e) => {
  console.log(`ERROR ${e.message}`);
  process.exitCode = 1;
});
