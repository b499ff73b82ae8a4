/**
 * Every message that crosses a socket, with its schema. A message is an
 * object whose `t` field is its type number; `MessageOf<T>` is its type.
 * Receivers validate each message against its schema and drop (and log) what
 * does not match.
 * @internal
 */
import { S, type Check, type Infer } from './schema';

/** Version of the wire protocol (3: frames of 129 B to 1 KiB travel in chunks, see codec.ts); frames of another version are dropped. */
export const PROTOCOL_VERSION = 3;

// ---------------------------------------------------------------------------
// shared shapes

/** Where a process can be reached. `slot` is the process's index on its node (for the object store), -1 if none. */
export const AddressS = S.obj({ workerId: S.str, nodeId: S.str, endpoint: S.str, slot: S.int });
/** A value AddressS accepts. */
export type Address = Infer<typeof AddressS>;

/** Resource amounts by name: finite and non-negative. */
export const ResourcesS = S.record(S.nonNeg);
/** A value ResourcesS accepts. */
export type Resources = Infer<typeof ResourcesS>;

/** Where an object's bytes are: in a node's arena, or spilled to a file. */
export const LocationS = S.obj({
  node: S.str,
  off: S.optional(S.nonNeg),
  size: S.nonNeg,
  spill: S.optional(S.str),
});
/** A value LocationS accepts. */
export type Location = Infer<typeof LocationS>;

/** A reference as it travels: object id and its owner. */
/** A reference on the wire: an object's, or (`a: 1`) an actor's. */
export const RefWireS = S.obj({ id: S.str, owner: AddressS, a: S.optional(S.int) });
/** A value RefWireS accepts. */
export type RefWire = Infer<typeof RefWireS>;

/** The value of an object: inline bytes, a location, or an error. */
export const ObjectValueS = S.obj({
  blob: S.optional(S.bin),
  loc: S.optional(LocationS),
  /** refs contained in the value, already registered for the receiver */
  refs: S.optional(S.arr(RefWireS)),
});
/** A value ObjectValueS accepts. */
export type ObjectValue = Infer<typeof ObjectValueS>;

/** A top-level ObjectRef argument, resolved by the submitter before the push. */
export const DepS = S.obj({ i: S.int, ref: RefWireS, val: S.optional(ObjectValueS) });
/** A value DepS accepts. */
export type Dep = Infer<typeof DepS>;

/**
 * Where a task or actor may run: the default policy (local node first,
 * another node when the local one is short), SPREAD over nodes, or a node
 * (with `soft`, another node when that one is gone or cannot hold it).
 * `prefer` is a soft hint: the node holding most of the task's arguments.
 */
export const SchedulingS = S.obj({
  spread: S.optional(S.bool),
  nodeId: S.optional(S.str),
  soft: S.optional(S.bool),
  prefer: S.optional(S.str),
});
/** A value SchedulingS accepts. */
export type Scheduling = Infer<typeof SchedulingS>;

/**
 * npm packages a worker resolves first (runtimeEnv.npm, validated and
 * normalized by the submitter; see runtime-env/npm-spec.ts). An empty
 * list: none, not even the job's.
 */
export const NpmEnvS = S.obj({ packages: S.arr(S.str), registry: S.optional(S.str), installScripts: S.optional(S.bool) });

/** A node as node managers see the cluster (the head sends it when resources change). */
export const NodeViewS = S.obj({ nodeId: S.str, endpoint: S.str, alive: S.bool, total: ResourcesS, available: ResourcesS });
/** A value NodeViewS accepts. */
export type NodeView = Infer<typeof NodeViewS>;

/**
 * Where the code of a remote function or actor class lives: a module and a
 * key in it (located), or, shipped by value, the file it was written in
 * (`module`, '' for none), a content hash (`key`), the function body that
 * returns it (`src`) and the loader helpers it needs (`needs`).
 */
export const CodeRefS = S.obj({ module: S.str, key: S.str, name: S.str, src: S.optional(S.str), needs: S.optional(S.arr(S.str, 64)) });
/** A value CodeRefS accepts. */
export type CodeRef = Infer<typeof CodeRefS>;

/** A normal task as pushed to a leased worker. */
export const TaskSpecS = S.obj({
  id: S.str,
  att: S.int,
  fn: CodeRefS,
  args: S.bin,
  deps: S.optional(S.arr(DepS)),
  /** number of returns; -1 streams (async generator) */
  nret: S.int,
  env: S.optional(S.record(S.str)),
  gpus: S.optional(S.arr(S.str)),
});
/** A value TaskSpecS accepts. */
export type TaskSpec = Infer<typeof TaskSpecS>;

/** A returned object. */
export const ReturnObjectS = S.obj({ id: S.str, val: ObjectValueS });
/** A value ReturnObjectS accepts. */
export type ReturnObject = Infer<typeof ReturnObjectS>;

/** Status of a finished task. */
export enum TaskStatus {
  Ok = 0,
  UserError = 1,
  Cancelled = 2,
  /** not started; the owner may push it elsewhere */
  Requeue = 3,
  /** the runtime could not run it (function not found, bad arguments) */
  SystemError = 4,
}

/** The outcome of one task attempt, as its executor reports it. */
export const TaskResultS = S.obj({
  id: S.str,
  att: S.int,
  st: S.int,
  rets: S.optional(S.arr(ReturnObjectS)),
  /** serialized error (a value blob) */
  err: S.optional(S.bin),
  /** execution time in microseconds */
  us: S.optional(S.num),
  /** number of items a streaming task produced */
  items: S.optional(S.int),
});
/** A value TaskResultS accepts. */
export type TaskResult = Infer<typeof TaskResultS>;

/** Everything needed to create (and recreate) an actor. */
export const ActorSpecS = S.obj({
  id: S.str,
  jobId: S.str,
  cls: CodeRefS,
  name: S.optional(S.str),
  ns: S.str,
  detached: S.bool,
  maxRestarts: S.int,
  maxTaskRetries: S.int,
  maxConcurrency: S.int,
  /** resources needed to place the actor */
  placement: ResourcesS,
  /** resources held while it runs */
  hold: ResourcesS,
  env: S.optional(S.record(S.str)),
  /** its working-directory package (runtimeEnv.workingDir), if any */
  pkg: S.optional(S.str),
  /** its npm packages (runtimeEnv.npm; absent: the job's) */
  npm: S.optional(NpmEnvS),
  owner: AddressS,
  methods: S.arr(S.str),
  args: S.bin,
  deps: S.optional(S.arr(DepS)),
  sched: S.optional(SchedulingS),
});
/** A value ActorSpecS accepts. */
export type ActorSpec = Infer<typeof ActorSpecS>;

/** Lifecycle of an actor, as the head tracks it. */
export enum ActorState {
  Pending = 0,
  Alive = 1,
  Restarting = 2,
  Dead = 3,
}

/** What the head tells subscribers about an actor. */
export const ActorInfoS = S.obj({
  id: S.str,
  state: S.int,
  className: S.str,
  name: S.optional(S.str),
  ns: S.str,
  jobId: S.str,
  methods: S.arr(S.str),
  cls: CodeRefS,
  maxTaskRetries: S.int,
  address: S.optional(AddressS),
  numRestarts: S.int,
  owner: AddressS,
  detached: S.bool,
  /** why it died, in words */
  death: S.optional(S.str),
  /** 'runtimeEnv': its runtime environment could not be set up (calls fail with RuntimeEnvSetupError) */
  deathKind: S.optional(S.oneOf('runtimeEnv')),
  /** the constructor's error, serialized */
  cause: S.optional(S.bin),
  pid: S.optional(S.int),
});
/** A value ActorInfoS accepts. */
export type ActorInfo = Infer<typeof ActorInfoS>;

/** An actor method call. */
export const ActorCallS = S.obj({
  id: S.str,
  att: S.int,
  seq: S.int,
  m: S.str,
  args: S.bin,
  deps: S.optional(S.arr(DepS)),
  nret: S.int,
});
/** A value ActorCallS accepts. */
export type ActorCall = Infer<typeof ActorCallS>;

/** An object in another node's store: its id and where its primary copy is. */
export const ObjectLocS = S.obj({ id: S.str, loc: LocationS });
/** A value ObjectLocS accepts. */
export type ObjectLoc = Infer<typeof ObjectLocS>;

/** Lease requests waiting on a node for resources: `n` requests of one shape. */
export const DemandS = S.obj({ resources: ResourcesS, n: S.int });
/** A value DemandS accepts. */
export type Demand = Infer<typeof DemandS>;

/** An actor worker a node hosts, as it reports it when it registers again. */
export const HostedActorS = S.obj({ actorId: S.str, address: AddressS, pid: S.int });
/** A value HostedActorS accepts. */
export type HostedActor = Infer<typeof HostedActorS>;

/** A node as the head reports it. */
export const NodeInfoS = S.obj({
  nodeId: S.str,
  endpoint: S.str,
  address: S.str,
  alive: S.bool,
  total: ResourcesS,
  available: ResourcesS,
  pid: S.int,
  isHead: S.bool,
  sessionDir: S.str,
  arenaPath: S.str,
  /** requests waiting there for resources */
  demand: S.optional(S.arr(DemandS)),
  /** why the head marked it dead */
  deathReason: S.optional(S.str),
});
/** A value NodeInfoS accepts. */
export type NodeInfo = Infer<typeof NodeInfoS>;

/** Per-job settings the node manager uses to start the job's workers. */
export const JobConfigS = S.obj({
  jobId: S.str,
  ns: S.str,
  env: S.record(S.str),
  cwd: S.str,
  execArgv: S.arr(S.str),
  logToDriver: S.bool,
  driver: AddressS,
  /** jest and other runners set globals that test files use at top level */
  jestGlobals: S.optional(S.bool),
  /** the job's working-directory package (runtimeEnv.workingDir of init), if any */
  pkg: S.optional(S.str),
  /** the job's npm packages (runtimeEnv.npm of init), if any */
  npm: S.optional(NpmEnvS),
});
/** A value JobConfigS accepts. */
export type JobConfig = Infer<typeof JobConfigS>;

/** A placement group as the head reports it (state: 'PENDING' | 'CREATED' | 'REMOVED'). */
export const PlacementGroupInfoS = S.obj({
  id: S.str,
  name: S.optional(S.str),
  ns: S.str,
  strategy: S.oneOf('PACK', 'SPREAD', 'STRICT_PACK', 'STRICT_SPREAD'),
  bundles: S.arr(ResourcesS),
  state: S.oneOf('PENDING', 'CREATED', 'REMOVED'),
  /** node of each bundle ('' while not placed) */
  nodes: S.arr(S.str),
  detached: S.bool,
  jobId: S.str,
  /** why it is pending, or why it was removed */
  reason: S.optional(S.str),
});
/** A value PlacementGroupInfoS accepts. */
export type PlacementGroupInfo = Infer<typeof PlacementGroupInfoS>;

/** Bundles of one placement group a node manager reserves. */
export const BundleS = S.obj({ index: S.int, resources: ResourcesS });
/** A value BundleS accepts. */
export type Bundle = Infer<typeof BundleS>;

// ---------------------------------------------------------------------------
// the registry

/** Message type numbers. */
export enum MT {
  // replies
  Reply = 1,
  // head
  RegisterNode = 10,
  RegisterJob = 11,
  JobFinished = 12,
  GetClusterInfo = 13,
  NodeResources = 14,
  RegisterActor = 15,
  GetActor = 16,
  ListNamedActors = 17,
  KillActor = 18,
  SubscribeActor = 19,
  ActorUpdate = 20,
  ActorOutOfScope = 21,
  ActorCreated = 22,
  WorkerDied = 23,
  KvPut = 24,
  KvGet = 25,
  KvDel = 26,
  KvKeys = 27,
  UnsubscribeActor = 28,
  PutJobConfig = 30,
  GetJobConfig = 31,
  ClusterView = 32,
  /** a driver asks whether the head is alive (answered with an empty Reply) */
  Ping = 33,
  // node manager
  RegisterClient = 40,
  RequestLease = 41,
  LeaseGranted = 42,
  LeaseInfeasible = 43,
  CancelLeaseRequest = 44,
  ReturnLease = 45,
  TaskBlocked = 46,
  TaskUnblocked = 47,
  ReturnIdleLeases = 48,
  LeaseWorkerDied = 49,
  ProcessDied = 50,
  Logs = 51,
  KillWorker = 52,
  NodeStats = 53,
  LeaseSpillback = 54,
  LeaseFailed = 55,
  // core worker to core worker
  PushTasks = 70,
  TaskResults = 71,
  CancelTask = 72,
  CreateActor = 73,
  PushActorTasks = 74,
  StreamItem = 75,
  GetObject = 76,
  ObjectReply = 77,
  AddBorrower = 78,
  RemoveBorrower = 79,
  ExitWorker = 80,
  // head introspection (tests and tools)
  HeadStats = 130,
  // placement groups
  PrepareBundles = 100,
  CommitBundles = 101,
  ReleaseBundles = 102,
  CreatePlacementGroup = 103,
  RemovePlacementGroup = 104,
  GetPlacementGroup = 105,
  ListPlacementGroups = 106,
  WaitPlacementGroup = 107,
  PlacementGroupWarning = 108,
  // fault tolerance
  NodeDied = 110,
  NodeExit = 111,
  ReRegisterNode = 112,
  // objects across nodes
  PullObject = 90,
  UnpinObjects = 91,
  FreeObjects = 92,
  PinObject = 93,
  ReadChunk = 94,
}

const t = <N extends MT>(n: N): Check<N> => ((v: unknown) => v === n) as Check<N>;

/** Schemas by type. */
export const SCHEMAS = {
  [MT.Reply]: S.obj({ t: t(MT.Reply), reqId: S.int, ok: S.bool, error: S.optional(S.str), code: S.optional(S.str), data: S.optional(S.any) }),

  [MT.RegisterNode]: S.obj({
    t: t(MT.RegisterNode),
    reqId: S.int,
    nodeId: S.str,
    endpoint: S.str,
    address: S.str,
    total: ResourcesS,
    pid: S.int,
    isHead: S.bool,
    sessionDir: S.str,
    arenaPath: S.str,
    /** actor workers it hosts (a node registering again with a restarted head) */
    actors: S.optional(S.arr(HostedActorS)),
  }),
  [MT.RegisterJob]: S.obj({ t: t(MT.RegisterJob), reqId: S.int, driver: AddressS, ns: S.optional(S.str), pid: S.int }),
  [MT.JobFinished]: S.obj({ t: t(MT.JobFinished), reqId: S.optional(S.int), jobId: S.str }),
  [MT.GetClusterInfo]: S.obj({ t: t(MT.GetClusterInfo), reqId: S.int }),
  [MT.HeadStats]: S.obj({ t: t(MT.HeadStats), reqId: S.int }),
  [MT.Ping]: S.obj({ t: t(MT.Ping), reqId: S.int }),
  [MT.NodeResources]: S.obj({ t: t(MT.NodeResources), nodeId: S.str, available: ResourcesS, total: ResourcesS, demand: S.optional(S.arr(DemandS)) }),
  [MT.RegisterActor]: S.obj({ t: t(MT.RegisterActor), reqId: S.int, spec: ActorSpecS, getIfExists: S.bool }),
  [MT.GetActor]: S.obj({ t: t(MT.GetActor), reqId: S.int, name: S.str, ns: S.str }),
  [MT.ListNamedActors]: S.obj({ t: t(MT.ListNamedActors), reqId: S.int, ns: S.str, all: S.bool }),
  [MT.KillActor]: S.obj({ t: t(MT.KillActor), reqId: S.optional(S.int), actorId: S.str, noRestart: S.bool }),
  [MT.SubscribeActor]: S.obj({ t: t(MT.SubscribeActor), actorId: S.str }),
  [MT.UnsubscribeActor]: S.obj({ t: t(MT.UnsubscribeActor), actorId: S.str }),
  /** `as` is the id the subscriber knows the actor by (an alias from getIfExists) */
  [MT.ActorUpdate]: S.obj({ t: t(MT.ActorUpdate), info: ActorInfoS, as: S.str }),
  [MT.ActorOutOfScope]: S.obj({ t: t(MT.ActorOutOfScope), actorId: S.str }),
  [MT.ActorCreated]: S.obj({
    t: t(MT.ActorCreated),
    actorId: S.str,
    workerId: S.str,
    ok: S.bool,
    err: S.optional(S.bin),
    pid: S.int,
  }),
  [MT.WorkerDied]: S.obj({
    t: t(MT.WorkerDied),
    nodeId: S.str,
    workerId: S.str,
    actorId: S.optional(S.str),
    reason: S.str,
    /** where the process listened (others drop their connection to it) */
    endpoint: S.optional(S.str),
  }),
  [MT.PutJobConfig]: S.obj({ t: t(MT.PutJobConfig), reqId: S.int, job: JobConfigS }),
  [MT.GetJobConfig]: S.obj({ t: t(MT.GetJobConfig), reqId: S.int, jobId: S.str }),
  [MT.ClusterView]: S.obj({ t: t(MT.ClusterView), nodes: S.arr(NodeViewS) }),
  [MT.KvPut]: S.obj({ t: t(MT.KvPut), reqId: S.int, ns: S.str, key: S.str, value: S.bin, overwrite: S.bool }),
  [MT.KvGet]: S.obj({ t: t(MT.KvGet), reqId: S.int, ns: S.str, key: S.str }),
  [MT.KvDel]: S.obj({ t: t(MT.KvDel), reqId: S.int, ns: S.str, key: S.str }),
  [MT.KvKeys]: S.obj({ t: t(MT.KvKeys), reqId: S.int, ns: S.str, prefix: S.str }),

  [MT.RegisterClient]: S.obj({
    t: t(MT.RegisterClient),
    reqId: S.int,
    kind: S.oneOf('driver', 'worker'),
    workerId: S.str,
    pid: S.int,
    endpoint: S.str,
    job: S.optional(JobConfigS),
  }),
  [MT.RequestLease]: S.obj({
    t: t(MT.RequestLease),
    leaseReqId: S.str,
    jobId: S.str,
    resources: ResourcesS,
    /** resources that must be free to place it (actors), if more than `resources` */
    placement: S.optional(ResourcesS),
    env: S.optional(S.record(S.str)),
    /** the working-directory package its worker runs with (absent: the job's) */
    pkg: S.optional(S.str),
    /** the npm packages its worker resolves first (absent: the job's) */
    npm: S.optional(NpmEnvS),
    actorId: S.optional(S.str),
    name: S.str,
    /** where to run it (see SchedulingS); absent: the default policy */
    sched: S.optional(SchedulingS),
    /** a node manager sent it here: grant it here or queue it, never pass it on */
    spilled: S.optional(S.bool),
    /** the node of the process that asks (its leases end when that node dies) */
    ownerNode: S.optional(S.str),
  }),
  [MT.LeaseGranted]: S.obj({
    t: t(MT.LeaseGranted),
    leaseReqId: S.str,
    leaseId: S.str,
    worker: AddressS,
    gpus: S.arr(S.str),
    pid: S.int,
  }),
  [MT.LeaseInfeasible]: S.obj({ t: t(MT.LeaseInfeasible), leaseReqId: S.str, message: S.str }),
  /** ask the node manager at `raylet` instead */
  [MT.LeaseSpillback]: S.obj({ t: t(MT.LeaseSpillback), leaseReqId: S.str, nodeId: S.str, raylet: S.str }),
  /**
   * the request can never be granted: fail its tasks. Without `kind`: they
   * cannot be scheduled (a hard node affinity to a node that is gone);
   * 'runtimeEnv': their runtime environment could not be set up on the node
   * (`message` says why)
   */
  [MT.LeaseFailed]: S.obj({ t: t(MT.LeaseFailed), leaseReqId: S.str, message: S.str, kind: S.optional(S.oneOf('runtimeEnv')) }),
  [MT.CancelLeaseRequest]: S.obj({ t: t(MT.CancelLeaseRequest), leaseReqId: S.str }),
  [MT.ReturnLease]: S.obj({ t: t(MT.ReturnLease), leaseId: S.str, kill: S.bool }),
  [MT.TaskBlocked]: S.obj({ t: t(MT.TaskBlocked), leaseId: S.str }),
  [MT.TaskUnblocked]: S.obj({ t: t(MT.TaskUnblocked), leaseId: S.str }),
  [MT.ReturnIdleLeases]: S.obj({ t: t(MT.ReturnIdleLeases) }),
  [MT.LeaseWorkerDied]: S.obj({ t: t(MT.LeaseWorkerDied), leaseId: S.str, workerId: S.str, reason: S.str }),
  [MT.ProcessDied]: S.obj({ t: t(MT.ProcessDied), workerId: S.str, endpoint: S.str, reason: S.str }),
  [MT.Logs]: S.obj({ t: t(MT.Logs), lines: S.arr(S.tuple(S.int, S.str, S.str)) }),
  [MT.KillWorker]: S.obj({ t: t(MT.KillWorker), workerId: S.str, force: S.bool, reason: S.str }),
  [MT.NodeStats]: S.obj({ t: t(MT.NodeStats), reqId: S.int }),

  [MT.PushTasks]: S.obj({ t: t(MT.PushTasks), leaseId: S.str, owner: AddressS, jobId: S.str, tasks: S.arr(TaskSpecS) }),
  [MT.TaskResults]: S.obj({ t: t(MT.TaskResults), results: S.arr(TaskResultS) }),
  [MT.CancelTask]: S.obj({ t: t(MT.CancelTask), taskId: S.str, force: S.bool, recursive: S.bool }),
  [MT.CreateActor]: S.obj({ t: t(MT.CreateActor), spec: ActorSpecS, numRestarts: S.int, gpus: S.arr(S.str) }),
  [MT.PushActorTasks]: S.obj({
    t: t(MT.PushActorTasks),
    actorId: S.str,
    caller: AddressS,
    /** the caller restarts its sequence at 0 for each actor incarnation */
    incarnation: S.int,
    calls: S.arr(ActorCallS),
  }),
  [MT.StreamItem]: S.obj({ t: t(MT.StreamItem), taskId: S.str, att: S.int, index: S.int, obj: ReturnObjectS }),
  [MT.GetObject]: S.obj({ t: t(MT.GetObject), reqId: S.int, id: S.str, wait: S.bool }),
  [MT.ObjectReply]: S.obj({
    t: t(MT.ObjectReply),
    reqId: S.int,
    id: S.str,
    /** 0 ready, 1 pending, 2 error, 3 freed, 4 unknown */
    st: S.int,
    val: S.optional(ObjectValueS),
    err: S.optional(S.bin),
  }),
  [MT.AddBorrower]: S.obj({ t: t(MT.AddBorrower), reqId: S.int, ids: S.arr(S.str), borrower: AddressS }),
  [MT.RemoveBorrower]: S.obj({ t: t(MT.RemoveBorrower), ids: S.arr(S.str), borrowerId: S.str }),
  /** without `ifIdle`: exit now; with it (a request), exit unless the worker owns objects or tasks in use (it answers false then) */
  [MT.ExitWorker]: S.obj({ t: t(MT.ExitWorker), reqId: S.optional(S.int), ifIdle: S.optional(S.bool) }),

  /** head to node manager, phase 1: reserve the bundles' resources (reply ok false: they are not free) */
  [MT.PrepareBundles]: S.obj({ t: t(MT.PrepareBundles), reqId: S.int, pgId: S.str, bundles: S.arr(BundleS) }),
  /** phase 2: the prepared bundles become resources `R_group_<i>_<pgid>` and `R_group_<pgid>` */
  [MT.CommitBundles]: S.obj({ t: t(MT.CommitBundles), reqId: S.int, pgId: S.str }),
  /** gives back what the node holds for the group (only bundles `indexes` if given); `removed`: it is gone for good (its leases end, new requests fail) */
  [MT.ReleaseBundles]: S.obj({ t: t(MT.ReleaseBundles), pgId: S.str, indexes: S.optional(S.arr(S.int)), removed: S.bool, reason: S.str }),
  [MT.CreatePlacementGroup]: S.obj({
    t: t(MT.CreatePlacementGroup),
    reqId: S.int,
    id: S.str,
    name: S.optional(S.str),
    ns: S.str,
    strategy: S.oneOf('PACK', 'SPREAD', 'STRICT_PACK', 'STRICT_SPREAD'),
    bundles: S.arr(ResourcesS),
    detached: S.bool,
    jobId: S.str,
    /** who is told (once) why the group stays pending */
    creator: S.str,
  }),
  [MT.RemovePlacementGroup]: S.obj({ t: t(MT.RemovePlacementGroup), reqId: S.int, pgId: S.str }),
  /** by id, or by name in a namespace; the reply's data is a PlacementGroupInfo */
  [MT.GetPlacementGroup]: S.obj({ t: t(MT.GetPlacementGroup), reqId: S.int, pgId: S.optional(S.str), name: S.optional(S.str), ns: S.str }),
  [MT.ListPlacementGroups]: S.obj({ t: t(MT.ListPlacementGroups), reqId: S.int }),
  /** answered (data: true) once the group is created, false after `timeoutMs`, an error once it is removed */
  [MT.WaitPlacementGroup]: S.obj({ t: t(MT.WaitPlacementGroup), reqId: S.int, pgId: S.str, timeoutMs: S.optional(S.nonNeg) }),
  [MT.PlacementGroupWarning]: S.obj({ t: t(MT.PlacementGroupWarning), pgId: S.str, message: S.str }),
  /** a node is dead (head -> node managers -> their processes): what lived there is gone */
  [MT.NodeDied]: S.obj({ t: t(MT.NodeDied), nodeId: S.str, endpoint: S.str, reason: S.str }),
  /** the head marked this node dead: its node manager must exit (it is never used again) */
  [MT.NodeExit]: S.obj({ t: t(MT.NodeExit), reason: S.str }),
  /** the head does not know this node (it restarted): register again, with the same id */
  [MT.ReRegisterNode]: S.obj({ t: t(MT.ReRegisterNode) }),
  /** a process asks its node manager for a local copy of an object on another node; the reply's data is the copy's Location */
  [MT.PullObject]: S.obj({ t: t(MT.PullObject), reqId: S.int, id: S.str, loc: LocationS, owner: S.str }),
  /** a process no longer reads these local copies */
  [MT.UnpinObjects]: S.obj({ t: t(MT.UnpinObjects), ids: S.arr(S.str) }),
  /**
   * the owner freed these objects: `hop` 0 from the owner to its node manager,
   * 1 to the node of the primary copy, 2 to a node that holds a copy
   */
  [MT.FreeObjects]: S.obj({ t: t(MT.FreeObjects), objs: S.arr(ObjectLocS), hop: S.int }),
  /** a worker made the primary copy of an object whose owner lives on another node: its node manager keeps it; the reply's data is its Location */
  [MT.PinObject]: S.obj({ t: t(MT.PinObject), reqId: S.int, id: S.str, loc: LocationS, owner: AddressS }),
  /** a node manager reads `len` bytes at `pos` of an object from the node of its primary copy; the reply's data is the bytes */
  [MT.ReadChunk]: S.obj({ t: t(MT.ReadChunk), reqId: S.int, id: S.str, loc: LocationS, pos: S.nonNeg, len: S.nonNeg, node: S.str, owner: S.str }),
} as const;

type Schemas = typeof SCHEMAS;
/** The message type for type number `T`. */
export type MessageOf<T extends keyof Schemas> = Infer<Schemas[T]>;
/** Any message. */
export type Message = { [K in keyof Schemas]: MessageOf<K> }[keyof Schemas];

/** Why a message is not valid, or undefined when it is. */
export function invalidReason(m: unknown): string | undefined {
  if (typeof m !== 'object' || m === null) return 'not an object';
  const type = (m as { t?: unknown }).t;
  if (typeof type !== 'number') return 'no type';
  const schema = (SCHEMAS as Record<number, Check<unknown>>)[type];
  if (!schema) return `unknown type ${type}`;
  return schema(m) ? undefined : `fields of type ${type} do not match its schema`;
}
