// The peer of the HTTP benchmark: a bare fastify handler answering 'ok', in its own process.
const fastify = require('fastify')({ logger: false });
fastify.get('/*', async () => 'ok');
fastify.listen({ port: Number(process.argv[2]), host: '127.0.0.1' }).then(() => process.send && process.send('ready'));
