## zen-crdt for Nim: dual-mode CRDT values with model_citizen's words.
##
## .. code-block:: nim
##   import zen_crdt
##   let ctx = CrdtContext.init(peer_id = 1)
##   ctx.add_peer(2)
##   var pos = CrdtZenValue[Vector3].init(ctx, id = "unit/7/pos")            # FastLocal
##   var score = CrdtZenValue[int].init(ctx, id = "score", mode = WaitForSync, policy = Max)
##   pos.value = vec3(1, 2, 3)
##   let zid = pos.changes:
##     if added and change.is_correction: snap_to(change.item)
##   ctx.boop(now_ms)      # tick, send to subscribed contexts, dispatch callbacks
##   for msg in ctx.outbound: transport.send(msg.to, msg.bytes)   # to = 0: everyone
##
## Callbacks run only inside `boop` (or `dispatch`), on the thread that calls it: local
## writes notify at the next `boop`, not during the assignment as in model_citizen.
## Errors raise `ZenCrdtError` with the status and the library's message. Contexts are
## freed by their destructor under `--mm:orc`/`--mm:arc` and by `close()` (idempotent);
## a value used after its context is closed raises, never crashes.

import std/[options, tables, sets, strutils]
import zen_crdt/raw

export raw.zen_context_t, raw.zen_value_t, raw.zen_options_t, raw.zen_metrics_t

when not defined(gcDestructors):
  {.warning: "zen_crdt: build with --mm:orc or --mm:arc; under refc contexts are freed only by close()".}

type
  ZenCrdtError* = object of CatchableError
    ## A failed call: `status` is the C status (`ZEN_ERR_*`), the message says why.
    status*: int32
  SyncMode* = enum
    FastLocal, WaitForSync
  CorrectionPolicy* = enum
    LastWriterWins, Max, Min, TakeAverage, Custom
  SyncState* = enum
    LocalOnly, Syncing, Converged, Conflicted
  ChangeKind* = enum
    ## model_citizen's kinds, plus `SyncStateChanged` (only the sync state changed),
    ## `OwnerChanged` (the owner of an owner-only value changed with this change) and
    ## `Rejected` (this context's write was refused: it was no longer the owner).
    Created, Added, Removed, Modified, Touched, Closed, SyncStateChanged, OwnerChanged, Rejected
  ZID* = uint16
    ## A callback's id, from `track`.

  CrdtChange*[T] = ref object
    item*: T
    changes*: set[ChangeKind]
    sync_state*: SyncState
    is_correction*: bool  ## a concurrent write by another peer replaced what was shown
    is_initial*: bool     ## it "was already there": this context had never shown the
                          ## value's content (created elsewhere, caught up, loaded)
    owner_changed*: bool  ## the owner of this owner-only value changed (see `owner`)
    origin*: uint64       ## the peer whose write caused it (this peer for local writes)
    time_ms*: uint64      ## host time, in the ms passed to `boop`/`tick`
    index*: int           ## a `CrdtZenSeq` item's index (where it is, or was for a
                          ## removal); 0 for other changes

  CtxHandle = object
    h: zen_context_t
  NetHandle = object
    h: zen_net_t
  BusHandle = object
    h: zen_bus_t
  EndpointHandle = object
    h: zen_endpoint_t
  BridgeHandle = object
    h: zen_bridge_t
  DriverHandle = object
    h: zen_driver_t

  Dispatch = proc (ev: ptr zen_change_t, closed: bool) {.closure, gcsafe.}
  Callback = object
    zid: ZID
    fn: Dispatch
  TableDispatch = proc (ev: ptr zen_table_change_t, closed: bool) {.closure, gcsafe.}
  TableCallback = object
    zid: ZID
    fn: TableDispatch
  ValueKey = (uint64, uint64)
  Link = object
    h: zen_context_t
    peer: uint64

  CrdtContext* = ref object
    ## One replica (one player). Use it from one thread (its callbacks run there);
    ## link contexts of other threads with `subscribe(handle, peer)`.
    handle: CtxHandle
    peer: uint64
    callbacks: Table[ValueKey, seq[Callback]]
    table_callbacks: Table[ValueKey, seq[TableCallback]]
    skip: Table[ValueKey, HashSet[ZID]]
    pausing: seq[(ValueKey, ZID)]
    next_zid: ZID
    links: seq[Link]
    buf: seq[byte]

  CrdtZenValue*[T] = ref object
    ## One value of one context, typed.
    ctx: CrdtContext
    h: zen_value_t
    id*: string

  CrdtZenTable*[K, V] = ref object
    ## One table of one context (1.5): keys `K` (an integer type or string, or a type
    ## with `toZenKey`/`fromZenKey`) to entries `V` (any value type), each entry a
    ## register replicated like a value.
    ctx: CrdtContext
    h: zen_table_t
    id*: string

  CrdtZenSet*[T] = ref object
    ## One set of one context (1.5): members `T` (any value type). Add wins: an add
    ## concurrent with a removal of the same member leaves it in.
    ctx: CrdtContext
    h: zen_table_t
    id*: string

  CrdtZenSeq*[T] = ref object
    ## One sequence of one context (1.5): items `T` in one order on every peer
    ## (concurrent inserts at one place keep both).
    ctx: CrdtContext
    h: zen_table_t
    id*: string

  Pair*[K, V] = object
    ## A table change's item, as model_citizen's `ZenTable` gives it.
    key*: K
    value*: V

  CrdtNet* = ref object
    ## A seeded simulated network (latency, jitter, loss, partitions) for tests.
    handle: NetHandle

  CrdtBus* = ref object
    ## Links contexts on threads of one process without a transport of your own (since
    ## 1.1). Each thread joins with its context's peer id (pass `bus.handle` to the
    ## thread) and boops its context with the endpoint. Sends never block: a full
    ## queue drops and counts, and the protocol repairs it.
    handle: BusHandle

  CrdtEndpoint* = ref object
    ## One peer's link: a place on a bus (`join`), or an ENet host or client
    ## (`enet_listen`, `enet_connect`). Use it on the thread of its context; closing it
    ## (or collecting it) leaves. Or a relay for a bridge (`join_relay`,
    ## `enet_listen_relay`, `enet_connect_relay`): no peer of its own, never booped.
    handle: EndpointHandle
    peer: uint64

  CrdtBridge* = ref object
    ## Two relay endpoints joined on a thread of the library's (since 1.1): the peers
    ## each side reaches become members on the other, as Enu's main and worker contexts
    ## on a bus reach the network through one socket. Closing it (or collecting it)
    ## stops the thread and frees both endpoints; their peers leave the other side.
    handle: BridgeHandle

  CrdtDriver* = ref object
    ## A context pumped on its endpoint by a library thread (since 1.1), for a server or
    ## worker with no frame loop of its own: keep using the context (values,
    ## `wait_converged`), never tick or boop it yourself. Closing it (or collecting it)
    ## stops the thread and frees the endpoint; the context stays yours (close the driver
    ## first). Change callbacks need `dispatch` from your thread.
    handle: DriverHandle

  OutboundMessage* = tuple[to: uint64, bytes: seq[byte]]
    ## `to` is a peer id, or 0 for every member.

proc `=destroy`(x: var CtxHandle) =
  if x.h.id != 0:
    zen_context_free(x.h)
    x.h.id = 0

proc `=copy`(a: var CtxHandle, b: CtxHandle) {.error: "a context handle is owned once".}

proc `=destroy`(x: var NetHandle) =
  if x.h.id != 0:
    zen_net_free(x.h)
    x.h.id = 0

proc `=copy`(a: var NetHandle, b: NetHandle) {.error: "a network handle is owned once".}

proc `=destroy`(x: var BusHandle) =
  if x.h.id != 0:
    zen_bus_free(x.h)
    x.h.id = 0

proc `=copy`(a: var BusHandle, b: BusHandle) {.error: "a bus handle is owned once".}

proc `=destroy`(x: var EndpointHandle) =
  if x.h.id != 0:
    zen_endpoint_free(x.h)
    x.h.id = 0

proc `=copy`(a: var EndpointHandle, b: EndpointHandle) {.error: "an endpoint handle is owned once".}

proc `=destroy`(x: var BridgeHandle) =
  if x.h.id != 0:
    zen_bridge_free(x.h)
    x.h.id = 0

proc `=copy`(a: var BridgeHandle, b: BridgeHandle) {.error: "a bridge handle is owned once".}

proc `=destroy`(x: var DriverHandle) =
  if x.h.id != 0:
    zen_driver_free(x.h)
    x.h.id = 0

proc `=copy`(a: var DriverHandle, b: DriverHandle) {.error: "a driver handle is owned once".}

# ---- errors ------------------------------------------------------------------------------

proc raise_status(status: int32, what: string) {.noinline, noreturn.} =
  let msg = $zen_last_error()
  var e = newException(ZenCrdtError, what & " failed: " & $zen_status_name(status) & ": " & msg)
  e.status = status
  raise e

template check(call: int32, what: string) =
  let st = call
  if st != ZEN_OK: raise_status(st, what)

# ---- types: built-in and structural ------------------------------------------------------

template settable(T: typedesc, f: untyped): bool =
  compiles((proc () =
    var v: T
    v.f = 0'f32
    discard float32(v.f))())

template is_color(T: typedesc): bool =
  settable(T, r) and settable(T, g) and settable(T, b) and settable(T, a)
template is_vec4(T: typedesc): bool =
  settable(T, x) and settable(T, y) and settable(T, z) and settable(T, w)
template is_vec3(T: typedesc): bool =
  settable(T, x) and settable(T, y) and settable(T, z)
template is_vec2(T: typedesc): bool =
  settable(T, x) and settable(T, y)
proc names_a_quaternion(type_name: string): bool =
  ## Four-float types whose name says "quat" (godot-nim's and vmath's `Quat`) are
  ## rotations; the others are plain vec4.
  type_name.toLowerAscii.contains("quat")

template is_quat(T: typedesc): bool =
  is_vec4(T) and names_a_quaternion($T)

proc zen_kind*(T: typedesc): uint32 =
  ## The zen-crdt type `T` is stored as (a compile-time error names the hooks when
  ## there is none: `proc toZen(v: T): <a supported type>` and
  ## `proc fromZen(_: typedesc[T], w: <that type>): T`).
  when T is bool: ZEN_TYPE_BOOL
  elif T is SomeInteger: ZEN_TYPE_I64
  elif T is SomeFloat: ZEN_TYPE_F64
  elif T is string: ZEN_TYPE_STRING
  elif T is seq[byte]: ZEN_TYPE_BYTES
  elif compiles(toZen(default(T))): zen_kind(typeof(toZen(default(T))))
  elif is_color(T): ZEN_TYPE_COLOR
  elif is_quat(T): ZEN_TYPE_QUAT
  elif is_vec4(T): ZEN_TYPE_VEC4
  elif is_vec3(T): ZEN_TYPE_VEC3
  elif is_vec2(T): ZEN_TYPE_VEC2
  else:
    {.error: "zen_crdt: type " & $T & " has no zen-crdt mapping. Use bool, an integer, a float, " &
      "string, seq[byte], or a type with float fields x y [z [w]] or r g b a; or write " &
      "`proc toZen(v: " & $T & "): <one of those>` and `proc fromZen(_: typedesc[" & $T &
      "], w: <that type>): " & $T & "`".}

proc set_raw[T](c: zen_context_t, h: zen_value_t, v: T): int32 =
  when T is bool: zen_value_set_bool(c, h, v)
  elif T is SomeInteger: zen_value_set_i64(c, h, int64(v))
  elif T is SomeFloat: zen_value_set_f64(c, h, cdouble(v))
  elif T is string: zen_value_set_string(c, h, v.cstring, csize_t(v.len))
  elif T is seq[byte]:
    zen_value_set_bytes(c, h, (if v.len > 0: unsafeAddr v[0] else: nil), csize_t(v.len))
  elif compiles(toZen(v)): set_raw(c, h, toZen(v))
  elif is_color(T):
    zen_value_set_color(c, h, zen_color_t(r: cfloat(v.r), g: cfloat(v.g), b: cfloat(v.b), a: cfloat(v.a)))
  elif is_quat(T):
    zen_value_set_quat(c, h, zen_quat_t(x: cfloat(v.x), y: cfloat(v.y), z: cfloat(v.z), w: cfloat(v.w)))
  elif is_vec4(T):
    zen_value_set_vec4(c, h, zen_vec4_t(x: cfloat(v.x), y: cfloat(v.y), z: cfloat(v.z), w: cfloat(v.w)))
  elif is_vec3(T): zen_value_set_vec3(c, h, zen_vec3_t(x: cfloat(v.x), y: cfloat(v.y), z: cfloat(v.z)))
  elif is_vec2(T): zen_value_set_vec2(c, h, zen_vec2_t(x: cfloat(v.x), y: cfloat(v.y)))
  else: {.error: "zen_crdt: no mapping for " & $T.}

template put(dst, src: untyped, f: untyped) =
  dst.f = typeof(dst.f)(src.f)

proc read_sized(get: proc (buf: pointer, cap: csize_t, n: ptr csize_t): int32 {.closure.},
                what: string): string =
  var buf = newString(32)
  while true:
    var n: csize_t
    let st = get(if buf.len > 0: addr buf[0] else: nil, csize_t(buf.len), addr n)
    if st == ZEN_ERR_BUFFER_TOO_SMALL:
      buf.setLen(int(n))
      continue
    check st, what
    buf.setLen(int(n))
    return buf

proc get_raw[T](c: zen_context_t, h: zen_value_t): T =
  when T is bool: check zen_value_get_bool(c, h, addr result), "get"
  elif T is SomeInteger:
    var v: int64
    check zen_value_get_i64(c, h, addr v), "get"
    result = T(v)
  elif T is SomeFloat:
    var v: cdouble
    check zen_value_get_f64(c, h, addr v), "get"
    result = T(v)
  elif T is string:
    result = read_sized(proc (buf: pointer, cap: csize_t, n: ptr csize_t): int32 =
      zen_value_get_string(c, h, cast[cstring](buf), cap, n), "get")
  elif T is seq[byte]:
    let s = read_sized(proc (buf: pointer, cap: csize_t, n: ptr csize_t): int32 =
      zen_value_get_bytes(c, h, cast[ptr uint8](buf), cap, n), "get")
    result = cast[seq[byte]](s)
  elif compiles(toZen(default(T))):
    result = fromZen(T, get_raw[typeof(toZen(default(T)))](c, h))
  elif is_color(T):
    var v: zen_color_t
    check zen_value_get_color(c, h, addr v), "get"
    put(result, v, r); put(result, v, g); put(result, v, b); put(result, v, a)
  elif is_quat(T):
    var v: zen_quat_t
    check zen_value_get_quat(c, h, addr v), "get"
    put(result, v, x); put(result, v, y); put(result, v, z); put(result, v, w)
  elif is_vec4(T):
    var v: zen_vec4_t
    check zen_value_get_vec4(c, h, addr v), "get"
    put(result, v, x); put(result, v, y); put(result, v, z); put(result, v, w)
  elif is_vec3(T):
    var v: zen_vec3_t
    check zen_value_get_vec3(c, h, addr v), "get"
    put(result, v, x); put(result, v, y); put(result, v, z)
  elif is_vec2(T):
    var v: zen_vec2_t
    check zen_value_get_vec2(c, h, addr v), "get"
    put(result, v, x); put(result, v, y)

proc from_data*[T](d: zen_value_data_t, ok: var bool): T =
  ## The value of an event's payload as `T`; `ok` is false if it holds another type.
  ok = d.value_type == zen_kind(T)
  if not ok: return
  when T is bool: result = d.data.b
  elif T is SomeInteger: result = T(d.data.i)
  elif T is SomeFloat: result = T(d.data.f)
  elif T is string or T is seq[byte]:
    let n = int(d.data.bytes.len)
    when T is string: result = newString(n)
    else: result = newSeq[byte](n)
    if n > 0: copyMem(addr result[0], d.data.bytes.`ptr`, n)
  elif compiles(toZen(default(T))):
    result = fromZen(T, from_data[typeof(toZen(default(T)))](d, ok))
  elif is_color(T):
    let v = d.data.vec
    result.r = typeof(result.r)(v[0]); result.g = typeof(result.g)(v[1])
    result.b = typeof(result.b)(v[2]); result.a = typeof(result.a)(v[3])
  else:
    let v = d.data.vec
    result.x = typeof(result.x)(v[0]); result.y = typeof(result.y)(v[1])
    when is_vec3(T): result.z = typeof(result.z)(v[2])
    when is_vec4(T): result.w = typeof(result.w)(v[3])

# ---- contexts ---------------------------------------------------------------------------

proc default_options*(): zen_options_t =
  ## The library's default options; change fields, then pass to `CrdtContext.init`.
  check zen_options_default(addr result), "zen_options_default"

proc init*(_: type CrdtContext, peer_id: uint64, options = default_options()): CrdtContext =
  ## A context for peer `peer_id` (1..2^53-1, unique in the session).
  # The object is made only once the call succeeded: nothing to release if it raises.
  var opts = options
  var h: zen_context_t
  check zen_context_new(peer_id, addr opts, addr h), "CrdtContext.init"
  result = CrdtContext(peer: peer_id)
  result.handle.h = h

proc load*(_: type CrdtContext, peer_id: uint64, saved: openArray[byte],
           options = default_options()): CrdtContext =
  ## A context for `peer_id` holding a state `save` produced (here or on another
  ## machine); each value is reported as created at the first `boop`, and the context
  ## has no peers yet. Load under the id that saved only its latest save (saved on quit,
  ## loaded on start); another machine taking the state over (a room's keeper) loads
  ## under an id that never wrote in it. Raises ZEN_ERR_DECODE for a corrupt, truncated
  ## or newer save. Since 1.2.
  var opts = options
  var h: zen_context_t
  check zen_context_load(peer_id, addr opts, (if saved.len > 0: unsafeAddr saved[0] else: nil),
                         csize_t(saved.len), addr h), "CrdtContext.load"
  result = CrdtContext(peer: peer_id)
  result.handle.h = h

proc load_file*(_: type CrdtContext, peer_id: uint64, path: string,
                options = default_options()): CrdtContext =
  ## `load` from a file `save_file` wrote; raises ZEN_ERR_IO if it cannot be read.
  var opts = options
  var h: zen_context_t
  check zen_context_load_file(peer_id, addr opts, path.cstring, csize_t(path.len), addr h),
        "CrdtContext.load_file"
  result = CrdtContext(peer: peer_id)
  result.handle.h = h

proc save*(ctx: CrdtContext): seq[byte] =
  ## The whole state (every value, its policy, mode and merge history, and where this
  ## context stands on every peer's stream) for `CrdtContext.load`. Since 1.2.
  var b: zen_bytes_t
  check zen_context_save(ctx.handle.h, addr b), "save"
  result = newSeq[byte](int(b.len))
  if b.len > 0: copyMem(addr result[0], b.`ptr`, int(b.len))
  zen_bytes_free(addr b)

proc save_file*(ctx: CrdtContext, path: string) =
  ## Saves to `path` atomically (a temporary file beside it, flushed, renamed over it): a
  ## crash leaves the old file or the new one. Raises ZEN_ERR_IO naming the failed step.
  check zen_context_save_file(ctx.handle.h, path.cstring, csize_t(path.len)), "save_file"

proc handle*(ctx: CrdtContext): zen_context_t = ctx.handle.h
  ## The C handle (for `raw`, or to link a context on another thread).

proc peer_id*(ctx: CrdtContext): uint64 = ctx.peer

proc is_closed*(ctx: CrdtContext): bool = ctx.handle.h.id == 0

proc close*(ctx: CrdtContext) =
  ## Frees the context now (idempotent). Its values raise from then on.
  if ctx.handle.h.id != 0:
    zen_context_free(ctx.handle.h)
    ctx.handle.h.id = 0
  ctx.callbacks.clear
  ctx.links.setLen 0

proc add_peer*(ctx: CrdtContext, peer: uint64) =
  check zen_context_add_peer(ctx.handle.h, peer), "add_peer"

proc remove_peer*(ctx: CrdtContext, peer: uint64) =
  check zen_context_remove_peer(ctx.handle.h, peer), "remove_peer"

proc tick*(ctx: CrdtContext, now_ms: uint64) =
  ## Advances to host time `now_ms` (flushes writes, applies what arrived). `boop`
  ## does this and more.
  check zen_context_tick(ctx.handle.h, now_ms), "tick"

proc next_deadline_ms*(ctx: CrdtContext): Option[uint64] =
  ## When `tick` next has work if nothing arrives and nothing is written (host time in
  ## ms, the clock `tick` takes); none when nothing is scheduled. A server can sleep until
  ## this or the next receipt instead of ticking at a fixed rate. Since 1.1.
  var at: uint64
  check zen_context_next_deadline_ms(ctx.handle.h, addr at), "next_deadline_ms"
  if at != ZEN_NO_DEADLINE: some(at) else: none(uint64)

proc receive*(ctx: CrdtContext, bytes: openArray[byte]) =
  ## A message from the transport (trusting the sender it names).
  check zen_context_receive(ctx.handle.h, (if bytes.len > 0: unsafeAddr bytes[0] else: nil),
                            csize_t(bytes.len)), "receive"

proc receive_from*(ctx: CrdtContext, peer: uint64, bytes: openArray[byte]) =
  ## A message from a transport that knows its sender `peer`.
  check zen_context_receive_from(ctx.handle.h, peer,
                                 (if bytes.len > 0: unsafeAddr bytes[0] else: nil),
                                 csize_t(bytes.len)), "receive_from"

proc poll_one(ctx: CrdtContext, msg: var OutboundMessage): bool =
  if ctx.buf.len < 1024: ctx.buf.setLen 1024
  while true:
    var n: csize_t
    var to: uint64
    var has: bool
    let st = zen_context_poll_outbound(ctx.handle.h, addr ctx.buf[0], csize_t(ctx.buf.len),
                                       addr n, addr to, addr has)
    if st == ZEN_ERR_BUFFER_TOO_SMALL:
      ctx.buf.setLen int(n)
      continue
    check st, "outbound"
    if not has: return false
    msg = (to, ctx.buf[0 ..< int(n)])
    return true

iterator outbound*(ctx: CrdtContext): OutboundMessage =
  ## The messages to send: `to` a peer id, or 0 for every member.
  var msg: OutboundMessage
  while ctx.poll_one(msg):
    yield msg

proc subscribe*(ctx: CrdtContext, other: zen_context_t, other_peer: uint64) =
  ## Links this context to a context of this process (possibly on another thread):
  ## `boop` hands it this context's messages. Makes each a member of the other; the
  ## other side links back with its own `subscribe`.
  ctx.add_peer(other_peer)
  ctx.links.add Link(h: other, peer: other_peer)

proc subscribe*(ctx: CrdtContext, other: CrdtContext) =
  ## Links two contexts of this thread both ways (model_citizen's `subscribe(ctx)`).
  ctx.subscribe(other.handle.h, other.peer)
  other.subscribe(ctx.handle.h, ctx.peer)

proc forward(ctx: CrdtContext) =
  var msg: OutboundMessage
  while ctx.poll_one(msg):
    var gone: seq[int]
    for i, l in ctx.links:
      if msg.to == 0 or msg.to == l.peer:
        let st = zen_context_receive_from(l.h, ctx.peer,
                                          (if msg.bytes.len > 0: addr msg.bytes[0] else: nil),
                                          csize_t(msg.bytes.len))
        if st == ZEN_ERR_INVALID_HANDLE: gone.add i  # that context was freed
    for i in countdown(gone.high, 0): ctx.links.delete gone[i]

iterator poll_changes*(ctx: CrdtContext): zen_change_t =
  ## The change events as the C API gives them, for code that wants no callbacks.
  ## Strings inside stay valid only until the loop moves on (`from_data` copies).
  var ev: zen_change_t
  var has = true
  while true:
    check zen_context_poll_change(ctx.handle.h, addr ev, addr has), "poll_changes"
    if not has: break
    yield ev

iterator poll_table_changes*(ctx: CrdtContext): zen_table_change_t =
  ## The table events as the C API gives them (1.5). Keys and values inside stay valid
  ## only until the loop moves on.
  var ev: zen_table_change_t
  var has = true
  while true:
    check zen_context_poll_table_change(ctx.handle.h, addr ev, addr has), "poll_table_changes"
    if not has: break
    yield ev

proc dispatch*(ctx: CrdtContext) =
  ## Drains the change queues and calls the `track` callbacks (values first, then
  ## tables). `boop` calls it; call it yourself after `CrdtNet.step`.
  for ev in ctx.poll_table_changes:
    let key = (ev.table.owner, ev.table.index)
    if key notin ctx.table_callbacks: continue
    var e = ev
    for cb in ctx.table_callbacks[key]: cb.fn(addr e, false)
  for ev in ctx.poll_changes:
    let key = (ev.value.owner, ev.value.index)
    if key notin ctx.callbacks: continue
    let skip = ctx.skip.getOrDefault(key)
    let local = ev.origin == ctx.peer and ev.kind in [ZEN_CHANGE_MODIFIED, ZEN_CHANGE_TOUCHED]
    var e = ev
    for cb in ctx.callbacks[key]:
      if local and cb.zid in skip: continue
      cb.fn(addr e, false)
    if local: ctx.skip.del key

proc boop*(ctx: CrdtContext, now_ms: uint64) =
  ## The pump, once per frame: ticks, hands this context's messages to the
  ## subscribed contexts, and dispatches the change callbacks.
  ctx.tick(now_ms)
  if ctx.links.len > 0: ctx.forward()
  ctx.dispatch()

# ---- the in-process bus ------------------------------------------------------------------

proc init*(_: type CrdtBus): CrdtBus =
  ## A bus with no endpoints.
  var h: zen_bus_t
  check zen_bus_new(addr h), "CrdtBus.init"
  result = CrdtBus()
  result.handle.h = h

proc handle*(bus: CrdtBus): zen_bus_t = bus.handle.h
  ## The C handle, to join from another thread.

proc close*(bus: CrdtBus) =
  ## Frees the bus handle (idempotent); endpoints already joined keep working.
  if bus.handle.h.id != 0:
    zen_bus_free(bus.handle.h)
    bus.handle.h.id = 0

proc join*(bus: zen_bus_t, peer_id: uint64, capacity = 256): CrdtEndpoint =
  ## Joins as `peer_id` (the peer id of the context you will boop with it; unique on
  ## the bus), with room for `capacity` messages not yet booped.
  var e: zen_endpoint_t
  check zen_bus_join(bus, peer_id, csize_t(capacity), addr e), "join"
  result = CrdtEndpoint(peer: peer_id)
  result.handle.h = e

proc join*(bus: CrdtBus, peer_id: uint64, capacity = 256): CrdtEndpoint =
  bus.handle.h.join(peer_id, capacity)

proc default_enet_options*(): zen_enet_options_t =
  ## The default ENet settings (64 clients, a 3 s timeout); change fields, then pass on.
  check zen_enet_options_default(addr result), "zen_enet_options_default"

template with_session(opts: var zen_enet_options_t, room, token: string) =
  ## Points the options at `room` and `token` (which outlive the call that copies them).
  if room.len > 0:
    opts.room = room.cstring
    opts.room_len = csize_t(room.len)
  if token.len > 0:
    opts.token = cast[ptr uint8](token.cstring)
    opts.token_len = csize_t(token.len)

proc enet_listen*(address: string, peer_id: uint64, options = default_enet_options(),
                  room = "", token = ""): CrdtEndpoint =
  ## An ENet listen host for the context of `peer_id`, bound to `address`
  ## ("0.0.0.0:7000"; port 0 picks a free one, see `local_port`). Clients connect to it
  ## and it forwards between them, so only it must be reachable. Boop with it like a
  ## bus endpoint. With a `room` or `token` (1.2), clients naming another room or showing
  ## another token are refused (a session password). Since 1.1.
  var opts = options
  opts.with_session(room, token)
  var e: zen_endpoint_t
  check zen_enet_listen(address.cstring, csize_t(address.len), peer_id, addr opts, addr e), "enet_listen"
  result = CrdtEndpoint(peer: peer_id)
  result.handle.h = e

proc enet_connect*(host_address: string, peer_id: uint64, options = default_enet_options(),
                   room = "", token = ""): CrdtEndpoint =
  ## An ENet client of the host at `host_address` ("192.0.2.7:7000"), asking for `room`
  ## and showing `token` (1.2; a zen-relay gateway needs both). If the host refuses it,
  ## `boop` raises ZEN_ERR_TRANSPORT with the reason.
  var opts = options
  opts.with_session(room, token)
  var e: zen_endpoint_t
  check zen_enet_connect(host_address.cstring, csize_t(host_address.len), peer_id, addr opts,
                         addr e), "enet_connect"
  result = CrdtEndpoint(peer: peer_id)
  result.handle.h = e

proc enet_mesh*(address: string, peer_id: uint64, options = default_enet_options()): CrdtEndpoint =
  ## A peer of an ENet mesh for the context of `peer_id`, bound to `address`: every pair
  ## connected directly (no relay hop; every peer must be reachable). It accepts the
  ## peers that dial it; `dial` the others.
  var opts = options
  var e: zen_endpoint_t
  check zen_enet_mesh(address.cstring, csize_t(address.len), peer_id, addr opts, addr e), "enet_mesh"
  result = CrdtEndpoint(peer: peer_id)
  result.handle.h = e

proc dial*(ep: CrdtEndpoint, address: string) =
  ## Dials the mesh peer at `address` from a mesh endpoint; it becomes a member at a
  ## later boop.
  check zen_endpoint_dial(ep.handle.h, address.cstring, csize_t(address.len)), "dial"

proc join_relay*(bus: CrdtBus, capacity = 1024): CrdtEndpoint =
  ## Joins as a relay for a bridge: no peer of its own (nobody sees it join).
  var e: zen_endpoint_t
  check zen_bus_join_relay(bus.handle.h, csize_t(capacity), addr e), "join_relay"
  result = CrdtEndpoint(peer: 0)
  result.handle.h = e

proc enet_listen_relay*(address: string, options = default_enet_options()): CrdtEndpoint =
  ## An ENet listen host with no peer of its own, for a bridge: its clients see only the
  ## peers the bridge carries (a server's rooms on threads behind one port).
  var opts = options
  var e: zen_endpoint_t
  check zen_enet_listen_relay(address.cstring, csize_t(address.len), addr opts, addr e),
        "enet_listen_relay"
  result = CrdtEndpoint(peer: 0)
  result.handle.h = e

proc enet_connect_relay*(host_address: string, options = default_enet_options()): CrdtEndpoint =
  ## An ENet client with no peer of its own, for a bridge: the host and its clients see
  ## only the peers the bridge carries (a game's threads behind one socket).
  var opts = options
  var e: zen_endpoint_t
  check zen_enet_connect_relay(host_address.cstring, csize_t(host_address.len), addr opts,
                               addr e), "enet_connect_relay"
  result = CrdtEndpoint(peer: 0)
  result.handle.h = e

proc bridge*(a, b: CrdtEndpoint, period_ms = 1): CrdtBridge =
  ## Starts bridging relays `a` and `b`, pumped every `period_ms` (1..1000). On
  ## success the bridge owns both (they are closed here); on failure it raises and
  ## they stay yours.
  var h: zen_bridge_t
  check zen_bridge_start(a.handle.h, b.handle.h, uint32(period_ms), addr h), "bridge"
  a.handle.h.id = 0
  b.handle.h.id = 0
  result = CrdtBridge()
  result.handle.h = h

proc stats*(br: CrdtBridge): zen_bridge_stats_t =
  ## Messages and bytes moved across, peers carried, peers the other side refused.
  result.struct_size = csize_t(sizeof(zen_bridge_stats_t))
  check zen_bridge_stats(br.handle.h, addr result), "stats"

proc close*(br: CrdtBridge) =
  ## Stops the bridge and frees its endpoints (idempotent).
  if br.handle.h.id != 0:
    zen_bridge_free(br.handle.h)
    br.handle.h.id = 0

proc drive*(ctx: CrdtContext, ep: CrdtEndpoint, tick_ms = 16): CrdtDriver =
  ## Starts pumping `ctx` on `ep` (joined as its peer) every `tick_ms` (1..1000) on a
  ## library thread. On success the driver owns `ep` (closed here); on failure it raises
  ## and `ep` stays yours.
  var h: zen_driver_t
  check zen_driver_start(ctx.handle.h, ep.handle.h, uint32(tick_ms), addr h), "drive"
  ep.handle.h.id = 0
  result = CrdtDriver()
  result.handle.h = h

proc check*(d: CrdtDriver) =
  ## Raises the first error a frame met: ZEN_ERR_TRANSPORT when the ENet host refused
  ## the peer (pumping goes on), or what stopped it (the context was freed or poisoned).
  check zen_driver_check(d.handle.h), "driver"

proc close*(d: CrdtDriver) =
  ## Stops the thread and frees the endpoint (idempotent).
  if d.handle.h.id != 0:
    zen_driver_free(d.handle.h)
    d.handle.h.id = 0

proc local_port*(ep: CrdtEndpoint): uint16 =
  ## The UDP port of an ENet endpoint (raises for a bus endpoint).
  check zen_endpoint_local_port(ep.handle.h, addr result), "local_port"

proc peer_id*(ep: CrdtEndpoint): uint64 = ep.peer

proc close*(ep: CrdtEndpoint) =
  ## Leaves the bus now (idempotent): the others drop this member at their next boop.
  if ep.handle.h.id != 0:
    zen_endpoint_free(ep.handle.h)
    ep.handle.h.id = 0

proc boop*(ctx: CrdtContext, ep: CrdtEndpoint, now_ms: uint64) =
  ## The pump, once per frame, on the bus: peers that joined or left become members or
  ## stop being members, messages are received, the context ticks, its messages go out,
  ## and the change callbacks run.
  check zen_endpoint_pump(ctx.handle.h, ep.handle.h, now_ms), "boop"
  if ctx.links.len > 0: ctx.forward()
  ctx.dispatch()

proc stats*(ep: CrdtEndpoint): zen_endpoint_stats_t =
  ## Messages and bytes sent and received (per recipient), dropped on full queues.
  result.struct_size = csize_t(sizeof(zen_endpoint_stats_t))
  check zen_endpoint_stats(ep.handle.h, addr result), "stats"

proc metrics*(ctx: CrdtContext): zen_metrics_t =
  result.struct_size = csize_t(sizeof(zen_metrics_t))
  check zen_context_metrics(ctx.handle.h, addr result), "metrics"

# ---- values -----------------------------------------------------------------------------

proc init*[T](_: type CrdtZenValue[T], ctx: CrdtContext, id: string, mode = FastLocal,
              policy = LastWriterWins, custom = "", sync = true,
              owner = 0'u64): CrdtZenValue[T] =
  ## Creates the value `id`, or opens it if this context has it (the same id in
  ## several contexts is the same value). The first creator's policy holds everywhere;
  ## `mode` is applied to an existing value too (it is this context's own view).
  ## `sync = false` (model_citizen's `SyncLocal` off): never sent, never taken from
  ## peers, the same API and callbacks; chosen when the value is first created here
  ## (opening it with the other choice raises ZEN_ERR_INVALID_ARGUMENT).
  ## `owner` (a peer id, usually the context's own): only the owner may write; others
  ## raise ZEN_ERR_NOT_OWNER, and every peer refuses their writes on receipt. 0: anyone.
  var o: zen_value_options_t
  check zen_value_options_default(addr o), "zen_value_options_default"
  o.mode = uint32(ord(mode))
  o.policy = uint32(ord(policy))
  o.custom_name = custom.cstring
  o.custom_name_len = csize_t(custom.len)
  o.local_only = uint32(ord(not sync))
  o.owner = owner
  var h: zen_value_t
  check zen_value_create(ctx.handle.h, id.cstring, csize_t(id.len), zen_kind(T), addr o,
                         addr h), "CrdtZenValue.init(" & id & ")"
  result = CrdtZenValue[T](ctx: ctx, h: h, id: id)

proc ctx*[T](self: CrdtZenValue[T]): CrdtContext = self.ctx

proc value*[T](self: CrdtZenValue[T]): T =
  ## What reads show here (FastLocal: the latest local or resolved write; WaitForSync:
  ## what every member acknowledged).
  get_raw[T](self.ctx.handle.h, self.h)

proc skip_paused(self: CrdtZenValue) =
  ## A local change made inside `pause(zid)`: that callback does not hear of it.
  for (key, zid) in self.ctx.pausing:
    if key == (self.h.owner, self.h.index):
      self.ctx.skip.mgetOrPut(key, initHashSet[ZID]()).incl zid

proc `value=`*[T](self: CrdtZenValue[T], v: T) =
  ## Writes `v`; callbacks hear of it at the next `boop`.
  check set_raw(self.ctx.handle.h, self.h, v), "value= (" & self.id & ")"
  self.skip_paused()

proc touch*[T](self: CrdtZenValue[T]) =
  ## Re-announces the value unchanged: callbacks here and on every peer get a
  ## `{Touched}` change ("same value, act again"). Raises ZEN_ERR_REMOVED for a removed
  ## value, ZEN_ERR_INVALID_ARGUMENT for one never written.
  check zen_value_touch(self.ctx.handle.h, self.h), "touch (" & self.id & ")"
  self.skip_paused()

proc touch*[T](self: CrdtZenValue[T], v: T) =
  ## model_citizen's `touch(value)`: writes `v` if it differs, else re-announces it.
  if self.value != v: self.value = v
  else: self.touch()

proc owner*[T](self: CrdtZenValue[T]): uint64 =
  ## The owner of an owner-only value as this context knows it; 0 if anyone may write.
  check zen_value_owner(self.ctx.handle.h, self.h, addr result), "owner (" & self.id & ")"

proc transfer*[T](self: CrdtZenValue[T], to: uint64) =
  ## Gives an owner-only value to peer `to`; from now on this context may not write it
  ## (`{OwnerChanged}` here and on every peer). Raises ZEN_ERR_NOT_OWNER unless this
  ## context owns it, ZEN_ERR_INVALID_ARGUMENT for a value anyone may write.
  check zen_value_transfer(self.ctx.handle.h, self.h, to), "transfer (" & self.id & ")"
  self.skip_paused()

proc sync*[T](self: CrdtZenValue[T]): bool =
  ## False for a local-only value (`init(..., sync = false)`).
  var local: bool
  check zen_value_is_local_only(self.ctx.handle.h, self.h, addr local), "sync (" & self.id & ")"
  not local

proc info(self: CrdtZenValue, t, m, p, s: ptr uint32) =
  check zen_value_info(self.ctx.handle.h, self.h, t, m, p, s), "info (" & self.id & ")"

proc sync_state*[T](self: CrdtZenValue[T]): SyncState =
  var s: uint32
  self.info(nil, nil, nil, addr s)
  SyncState(s)

proc sync_mode*[T](self: CrdtZenValue[T]): SyncMode =
  var m: uint32
  self.info(nil, addr m, nil, nil)
  SyncMode(m)

proc correction_policy*[T](self: CrdtZenValue[T]): CorrectionPolicy =
  var p: uint32
  self.info(nil, nil, addr p, nil)
  CorrectionPolicy(p)

proc set_sync_mode*[T](self: CrdtZenValue[T], mode: SyncMode) =
  ## Switches between FastLocal and WaitForSync at run time (this peer's choice).
  check zen_value_set_mode(self.ctx.handle.h, self.h, uint32(ord(mode))), "set_sync_mode"

proc set_correction_policy*[T](self: CrdtZenValue[T], policy: CorrectionPolicy) =
  ## The core fixes a value's policy when it is first created (every peer must resolve
  ## alike), so this only accepts the policy the value has; pass another to `init`.
  let current = self.correction_policy
  if policy != current:
    var e = newException(ZenCrdtError, "set_correction_policy failed: ZEN_ERR_INVALID_ARGUMENT: " &
      "the policy of '" & self.id & "' is " & $current & ", fixed at creation; choose it in init")
    e.status = ZEN_ERR_INVALID_ARGUMENT
    raise e

proc remove*[T](self: CrdtZenValue[T]) =
  ## Removes the value on every peer.
  check zen_value_remove(self.ctx.handle.h, self.h), "remove (" & self.id & ")"

proc wait_converged*[T](self: CrdtZenValue[T], timeout_ms: uint64) =
  ## Blocks until Converged (raises with ZEN_ERR_TIMEOUT); for threads that do not tick.
  check zen_value_wait_converged(self.ctx.handle.h, self.h, timeout_ms), "wait_converged"

# ---- callbacks ----------------------------------------------------------------------------

proc to_changes[T](ev: ptr zen_change_t): seq[CrdtChange[T]] =
  ## One event as model_citizen's pair of changes.
  template mk(d: zen_value_data_t, kinds: set[ChangeKind]) =
    var ok: bool
    let item = from_data[T](d, ok)
    let owned = if ev.owner_changed: {OwnerChanged} else: {}
    result.add CrdtChange[T](item: item, changes: kinds + owned, sync_state: SyncState(ev.state),
                             is_correction: ev.is_correction, is_initial: ev.is_initial,
                             owner_changed: ev.owner_changed, origin: ev.origin,
                             time_ms: ev.time_ms)
  case ev.kind
  of ZEN_CHANGE_CREATED: mk(ev.new_value, {Created, Added})
  of ZEN_CHANGE_MODIFIED:
    if ev.old_value.value_type != ZEN_TYPE_NONE: mk(ev.old_value, {Removed, Modified})
    if ev.new_value.value_type != ZEN_TYPE_NONE: mk(ev.new_value, {Added, Modified})
  of ZEN_CHANGE_REMOVED: mk(ev.old_value, {Removed})
  of ZEN_CHANGE_TOUCHED: mk(ev.new_value, {Touched})
  of ZEN_CHANGE_OWNER_CHANGED: mk(ev.new_value, {OwnerChanged})
  of ZEN_CHANGE_REJECTED:
    if ev.old_value.value_type != ZEN_TYPE_NONE: mk(ev.old_value, {Removed, Modified, Rejected})
    if ev.new_value.value_type != ZEN_TYPE_NONE: mk(ev.new_value, {Added, Modified, Rejected})
  else: mk(ev.new_value, {SyncStateChanged})

proc track*[T](self: CrdtZenValue[T],
               callback: proc (changes: seq[CrdtChange[T]], zid: ZID) {.gcsafe.}): ZID {.discardable.} =
  ## Calls `callback` with each batch of changes to this value, inside `boop`.
  let ctx = self.ctx
  inc ctx.next_zid
  let zid = ctx.next_zid
  let fn: Dispatch = proc (ev: ptr zen_change_t, closed: bool) {.closure, gcsafe.} =
    if closed: callback(@[CrdtChange[T](changes: {Closed})], zid)
    else: callback(to_changes[T](ev), zid)
  ctx.callbacks.mgetOrPut((self.h.owner, self.h.index), @[]).add Callback(zid: zid, fn: fn)
  zid

proc track*[T](self: CrdtZenValue[T],
               callback: proc (changes: seq[CrdtChange[T]]) {.gcsafe.}): ZID {.discardable.} =
  self.track(proc (changes: seq[CrdtChange[T]], zid: ZID) {.gcsafe.} = callback(changes))

proc drop_callback[C](all: var Table[ValueKey, seq[C]], key: ValueKey, zid: ZID) =
  ## Removes callback `zid` of `key` (a value's, a table's or a set's); it receives a
  ## last `{Closed}` change now.
  if key notin all: return
  var cbs = all[key]
  for i, cb in cbs:
    if cb.zid == zid:
      cbs.delete i
      all[key] = cbs
      cb.fn(nil, true)
      return

proc untrack*[T](self: CrdtZenValue[T], zid: ZID) =
  ## Stops a callback; it receives a last `{Closed}` change now.
  drop_callback(self.ctx.callbacks, (self.h.owner, self.h.index), zid)

template pause*[T](self: CrdtZenValue[T], zid: ZID, body: untyped) =
  ## Runs `body`; the callback `zid` does not hear of the local writes made in it.
  let pause_key = (self.h.owner, self.h.index)
  self.ctx.pausing.add (pause_key, zid)
  try:
    body
  finally:
    discard self.ctx.pausing.pop

template changes*[T](self: CrdtZenValue[T], body: untyped): ZID =
  ## model_citizen's `changes:`: `body` runs for each change with `change`, `zid` and
  ## `added`, `removed`, `modified`, `touched`, `owner_changed`, `closed` (also as
  ## `added(item)`...)
  ## injected. Returns the callback's ZID.
  self.track proc (changes: seq[CrdtChange[T]], zid {.inject.}: ZID) {.gcsafe.} =
    for change {.inject.} in changes:
      template added: bool {.inject, used.} = Added in change.changes
      template added(obj: T): bool {.inject, used.} = change.item == obj and Added in change.changes
      template removed: bool {.inject, used.} = Removed in change.changes
      template removed(obj: T): bool {.inject, used.} = change.item == obj and Removed in change.changes
      template modified: bool {.inject, used.} = Modified in change.changes
      template touched: bool {.inject, used.} = Touched in change.changes
      template owner_changed: bool {.inject, used.} = OwnerChanged in change.changes
      template closed: bool {.inject, used.} = Closed in change.changes
      body

# ---- tables (1.5) -------------------------------------------------------------------------

proc collection_state(c: zen_context_t, h: zen_table_t, id: string): SyncState =
  var st: uint32
  check zen_table_state(c, h, addr st), "sync_state (" & id & ")"
  SyncState(st)

proc to_data[T](v: T, keep: var string): zen_value_data_t =
  ## `v` as a tagged C value; text and bytes borrow `keep`.
  result.value_type = zen_kind(T)
  when T is bool: result.data.b = v
  elif T is SomeInteger: result.data.i = int64(v)
  elif T is SomeFloat: result.data.f = cdouble(v)
  elif T is string or T is seq[byte]:
    keep = newString(v.len)
    if v.len > 0: copyMem(addr keep[0], unsafeAddr v[0], v.len)
    result.data.bytes = zen_bytes_view_t(`ptr`: (if keep.len > 0: cast[ptr uint8](addr keep[0]) else: nil),
                                         len: csize_t(keep.len))
  elif compiles(toZen(v)): result = to_data(toZen(v), keep)
  elif is_color(T): result.data.vec = [cfloat(v.r), cfloat(v.g), cfloat(v.b), cfloat(v.a)]
  elif is_quat(T) or is_vec4(T): result.data.vec = [cfloat(v.x), cfloat(v.y), cfloat(v.z), cfloat(v.w)]
  elif is_vec3(T): result.data.vec = [cfloat(v.x), cfloat(v.y), cfloat(v.z), 0]
  elif is_vec2(T): result.data.vec = [cfloat(v.x), cfloat(v.y), 0, 0]
  else: {.error: "zen_crdt: no mapping for " & $T.}

proc to_key[K](k: K, keep: var string): zen_key_t =
  ## `k` as a C key; a string key borrows `keep`.
  when K is string:
    keep = k
    zen_key_t(kind: ZEN_KEY_STRING, str: keep.cstring, str_len: csize_t(keep.len))
  elif K is SomeInteger: zen_key_t(kind: ZEN_KEY_INT, int_key: int64(k))
  elif compiles(toZenKey(k)): to_key(toZenKey(k), keep)
  else:
    {.error: "zen_crdt: a table key is an integer or a string; for " & $K &
      " write `proc toZenKey(k: " & $K & "): string` (or an integer) and " &
      "`proc fromZenKey(_: typedesc[" & $K & "], k: <that type>): " & $K & "`".}

proc from_key[K](k: zen_key_t, ok: var bool): K =
  ## A C key as `K`; `ok` is false when it is of the other kind.
  when K is string:
    ok = k.kind == ZEN_KEY_STRING
    if ok:
      result = newString(int(k.str_len))
      if k.str_len > 0: copyMem(addr result[0], k.str, int(k.str_len))
  elif K is SomeInteger:
    ok = k.kind == ZEN_KEY_INT
    if ok: result = K(k.int_key)
  else:
    result = fromZenKey(K, from_key[typeof(toZenKey(default(K)))](k, ok))

type AnyCrdtZenCollection = CrdtZenTable | CrdtZenSet | CrdtZenSeq
  ## What tables, sets and sequences share (the procs below serve all three).

proc sync_state*(self: AnyCrdtZenCollection): SyncState =
  ## The state of the whole collection: LocalOnly while any entry has a write no peer
  ## has, Converged once every member holds every entry's latest state.
  collection_state(self.ctx.handle.h, self.h, self.id)

proc len*(self: AnyCrdtZenCollection): int =
  ## Keys (members, items) that show an entry.
  var n: csize_t
  check zen_table_len(self.ctx.handle.h, self.h, addr n), "len (" & self.id & ")"
  int(n)

proc set_sync_mode*(self: AnyCrdtZenCollection, mode: SyncMode) =
  ## Switches how every entry shows writes (this peer's choice).
  check zen_table_set_mode(self.ctx.handle.h, self.h, uint32(ord(mode))), "set_sync_mode (" & self.id & ")"

proc untrack*(self: AnyCrdtZenCollection, zid: ZID) =
  ## Stops a callback; it receives a last `{Closed}` change now.
  drop_callback(self.ctx.table_callbacks, (self.h.owner, self.h.index), zid)

template inject_change_flags(change: untyped) =
  ## The flags model_citizen's `changes:` injects for a collection's change.
  template added: bool {.inject, used.} = Added in change.changes
  template removed: bool {.inject, used.} = Removed in change.changes
  template modified: bool {.inject, used.} = Modified in change.changes
  template touched: bool {.inject, used.} = Touched in change.changes
  template owner_changed: bool {.inject, used.} = OwnerChanged in change.changes
  template rejected: bool {.inject, used.} = Rejected in change.changes
  template closed: bool {.inject, used.} = Closed in change.changes

proc table_options(mode: SyncMode, policy: CorrectionPolicy, custom: string, owner: uint64): zen_table_options_t =
  ## A collection's options for `zen_table_open` / `zen_set_open` / `zen_seq_open`
  ## (`custom` is borrowed: keep it alive until the call returns).
  check zen_table_options_default(addr result), "zen_table_options_default"
  result.mode = uint32(ord(mode))
  result.policy = uint32(ord(policy))
  result.custom_name = custom.cstring
  result.custom_name_len = csize_t(custom.len)
  result.owner = owner

proc init*[K, V](_: type CrdtZenTable[K, V], ctx: CrdtContext, id: string, mode = FastLocal,
                 policy = LastWriterWins, custom = "", owner = 0'u64): CrdtZenTable[K, V] =
  ## Opens table `id` (created if new here; a peer's of that id is the same table).
  ## `mode` is this context's view of every entry; `policy` resolves concurrent updates
  ## of one entry (an entry's inserter's holds everywhere). `owner` (a peer id, usually
  ## the context's own): only the owner may insert, update or remove; others raise
  ## ZEN_ERR_NOT_OWNER here and are refused by every peer (see `transfer`). Raises
  ## ZEN_ERR_WRONG_TYPE if it holds entries of another type.
  var o = table_options(mode, policy, custom, owner)
  var h: zen_table_t
  check zen_table_open(ctx.handle.h, id.cstring, csize_t(id.len), zen_kind(V), addr o, addr h),
    "CrdtZenTable.init(" & id & ")"
  CrdtZenTable[K, V](ctx: ctx, h: h, id: id)

proc ctx*[K, V](self: CrdtZenTable[K, V]): CrdtContext = self.ctx

proc `[]=`*[K, V](self: CrdtZenTable[K, V], key: K, value: V) =
  ## Inserts `key` where it shows no entry, else updates its entry; callbacks hear of it
  ## at the next `boop` (FastLocal: reads show it at once).
  var kk, vk: string
  var k = to_key(key, kk)
  var d = to_data(value, vk)
  check zen_table_set(self.ctx.handle.h, self.h, addr k, addr d), "[]= (" & self.id & ")"

proc get_opt[K, V](self: CrdtZenTable[K, V], key: K): Option[V] =
  var kk: string
  var k = to_key(key, kk)
  var d: zen_value_data_t
  var has: bool
  check zen_table_get(self.ctx.handle.h, self.h, addr k, addr d, addr has), "get (" & self.id & ")"
  if has:
    var ok: bool
    let v = from_data[V](d, ok)
    if ok: return some(v)

proc `[]`*[K, V](self: CrdtZenTable[K, V], key: K): V =
  ## What `key` shows (by the mode); raises KeyError when it shows no entry.
  let v = self.get_opt(key)
  if v.isNone: raise newException(KeyError, "key not found in " & self.id & ": " & $key)
  v.get

proc getOrDefault*[K, V](self: CrdtZenTable[K, V], key: K, default: V = default(V)): V =
  self.get_opt(key).get(default)

proc hasKey*[K, V](self: CrdtZenTable[K, V], key: K): bool = self.get_opt(key).isSome
proc contains*[K, V](self: CrdtZenTable[K, V], key: K): bool = self.hasKey(key)

proc touch*[K, V](self: CrdtZenTable[K, V], key: K, value: V) =
  ## model_citizen's `touch(key, value)`: when `key` shows `value`, re-announces it
  ## unchanged (every peer's callbacks get `{Touched}`); otherwise assigns it.
  var kk, vk: string
  var k = to_key(key, kk)
  var d = to_data(value, vk)
  check zen_table_touch(self.ctx.handle.h, self.h, addr k, addr d), "touch (" & self.id & ")"

proc del*[K, V](self: CrdtZenTable[K, V], key: K) =
  ## Removes `key` on every peer (nothing if it shows no entry).
  var kk: string
  var k = to_key(key, kk)
  check zen_table_remove(self.ctx.handle.h, self.h, addr k, nil), "del (" & self.id & ")"

iterator pairs*[K, V](self: CrdtZenTable[K, V]): (K, V) =
  ## Every key that shows an entry and its value, sorted by key (a snapshot taken when
  ## the loop starts; entries of another key or value type are skipped).
  let c = self.ctx.handle.h
  var n: csize_t
  check zen_table_entries(c, self.h, addr n), "pairs (" & self.id & ")"
  var all: seq[(K, V)]
  for i in 0 ..< int(n):
    var k: zen_key_t
    var d: zen_value_data_t
    check zen_table_entry_at(c, csize_t(i), addr k, addr d), "pairs (" & self.id & ")"
    var kok, vok: bool
    let key = from_key[K](k, kok)
    let value = from_data[V](d, vok)
    if kok and vok: all.add (key, value)
  for p in all: yield p

iterator keys*[K, V](self: CrdtZenTable[K, V]): K =
  for k, _ in self.pairs: yield k

iterator values*[K, V](self: CrdtZenTable[K, V]): V =
  for _, v in self.pairs: yield v

proc entry_changes[I](ev: ptr zen_table_change_t, replaced: bool,
                      item_of: proc (d: zen_value_data_t, ok: var bool): I {.closure, gcsafe.}): seq[CrdtChange[I]] =
  ## One collection event as model_citizen's changes: `{Added}` with the new item,
  ## `{Removed}` with the old one, and for a replaced item (`replaced`: tables and
  ## sequences; a set's member never changes) old `{Removed, Modified}` + new
  ## `{Added, Modified}`. A sequence's carry the item's index.
  template mk(d: zen_value_data_t, kinds: set[ChangeKind]) =
    var ok: bool
    let item = item_of(d, ok)
    if ok:
      result.add CrdtChange[I](item: item, changes: kinds, sync_state: SyncState(ev.state),
                               is_correction: ev.is_correction, is_initial: ev.is_initial,
                               origin: ev.origin, time_ms: ev.time_ms, index: max(int(ev.index), 0))
  case ev.kind
  of ZEN_TABLE_ADDED: mk(ev.new_value, {Added})
  of ZEN_TABLE_REMOVED: mk(ev.old_value, {Removed})
  of ZEN_TABLE_TOUCHED: mk(ev.new_value, {Touched})
  of ZEN_TABLE_OWNER_CHANGED:
    # No element: `origin` is the new owner.
    result.add CrdtChange[I](changes: {OwnerChanged}, sync_state: SyncState(ev.state),
                             is_initial: ev.is_initial, origin: ev.origin, time_ms: ev.time_ms)
  of ZEN_TABLE_REJECTED:
    # Our write was refused: what showed goes, what shows now comes (as for a value).
    let both = ev.old_value.value_type != ZEN_TYPE_NONE and ev.new_value.value_type != ZEN_TYPE_NONE
    if ev.old_value.value_type != ZEN_TYPE_NONE:
      mk(ev.old_value, if both: {Removed, Modified, Rejected} else: {Removed, Rejected})
    if ev.new_value.value_type != ZEN_TYPE_NONE:
      mk(ev.new_value, if both: {Added, Modified, Rejected} else: {Added, Rejected})
  else:
    if replaced:
      mk(ev.old_value, {Removed, Modified})
      mk(ev.new_value, {Added, Modified})

proc track_entries[I](ctx: CrdtContext, h: zen_table_t,
                      callback: proc (changes: seq[CrdtChange[I]], zid: ZID) {.gcsafe.},
                      changes_of: proc (ev: ptr zen_table_change_t): seq[CrdtChange[I]] {.closure, gcsafe.}): ZID =
  ## Registers `callback` for the events of collection `h` (as `changes_of` turns them
  ## into changes); it hears `{Closed}` when untracked.
  inc ctx.next_zid
  let zid = ctx.next_zid
  let fn: TableDispatch = proc (ev: ptr zen_table_change_t, closed: bool) {.closure, gcsafe.} =
    if closed:
      callback(@[CrdtChange[I](changes: {Closed})], zid)
      return
    let changes = changes_of(ev)
    if changes.len > 0: callback(changes, zid)
  ctx.table_callbacks.mgetOrPut((h.owner, h.index), @[]).add TableCallback(zid: zid, fn: fn)
  zid

proc track*[K, V](self: CrdtZenTable[K, V],
                  callback: proc (changes: seq[CrdtChange[Pair[K, V]]], zid: ZID) {.gcsafe.}): ZID {.discardable.} =
  ## Calls `callback` with the changes of each key event of this table (model_citizen's
  ## `ZenTable` changes, `Pair` items), inside `boop`.
  track_entries[Pair[K, V]](self.ctx, self.h, callback, proc (ev: ptr zen_table_change_t): seq[CrdtChange[Pair[K, V]]] =
    var kok: bool
    let key = from_key[K](ev.key, kok)
    if kok:
      result = entry_changes[Pair[K, V]](ev, true, proc (d: zen_value_data_t, ok: var bool): Pair[K, V] =
        var vok: bool
        ok = true  # a value of another type shows as the type's default, as it always did
        Pair[K, V](key: key, value: from_data[V](d, vok))))

proc track*[K, V](self: CrdtZenTable[K, V],
                  callback: proc (changes: seq[CrdtChange[Pair[K, V]]]) {.gcsafe.}): ZID {.discardable.} =
  self.track(proc (changes: seq[CrdtChange[Pair[K, V]]], zid: ZID) {.gcsafe.} = callback(changes))

template changes*[K, V](self: CrdtZenTable[K, V], body: untyped): ZID =
  ## model_citizen's `changes:` for a table: `body` runs for each change with `change`
  ## (`change.item.key`, `change.item.value`), `zid` and the flags (`added`, `removed`,
  ## `modified`, `touched`, `owner_changed`, `rejected`, `closed`) injected.
  self.track proc (changes: seq[CrdtChange[Pair[K, V]]], zid {.inject.}: ZID) {.gcsafe.} =
    for change {.inject.} in changes:
      inject_change_flags(change)
      body

# ---- sets (1.5) ---------------------------------------------------------------------------

proc init*[T](_: type CrdtZenSet[T], ctx: CrdtContext, id: string, mode = FastLocal,
              owner = 0'u64): CrdtZenSet[T] =
  ## Opens set `id` (created if new here; a peer's of that id is the same set; a set and
  ## a table may share a name); `owner` as for `CrdtZenTable`. Raises
  ## ZEN_ERR_WRONG_TYPE if it holds another type.
  var o = table_options(mode, LastWriterWins, "", owner)
  var h: zen_table_t
  check zen_set_open(ctx.handle.h, id.cstring, csize_t(id.len), zen_kind(T), addr o, addr h),
    "CrdtZenSet.init(" & id & ")"
  CrdtZenSet[T](ctx: ctx, h: h, id: id)

proc ctx*[T](self: CrdtZenSet[T]): CrdtContext = self.ctx

proc incl*[T](self: CrdtZenSet[T], member: T) =
  ## Adds `member` on every peer (callbacks hear of it at the next `boop`).
  var keep: string
  var d = to_data(member, keep)
  check zen_set_add(self.ctx.handle.h, self.h, addr d), "incl (" & self.id & ")"

proc add*[T](self: CrdtZenSet[T], member: T) = self.incl(member)

proc touch*[T](self: CrdtZenSet[T], member: T) =
  ## model_citizen's `touch(item)`: re-announces `member` if it is in (`{Touched}` on
  ## every peer), else adds it.
  var keep: string
  var d = to_data(member, keep)
  check zen_set_touch(self.ctx.handle.h, self.h, addr d), "touch (" & self.id & ")"

proc excl*[T](self: CrdtZenSet[T], member: T) =
  ## Removes `member` on every peer (nothing if it is not in).
  var keep: string
  var d = to_data(member, keep)
  check zen_set_remove(self.ctx.handle.h, self.h, addr d, nil), "excl (" & self.id & ")"

proc contains*[T](self: CrdtZenSet[T], member: T): bool =
  var keep: string
  var d = to_data(member, keep)
  check zen_set_contains(self.ctx.handle.h, self.h, addr d, addr result), "contains (" & self.id & ")"

proc entry_values[T](c: zen_context_t, h: zen_table_t, id: string): seq[T] =
  ## The values of a collection's entries snapshot, in key order (a set's members, a
  ## sequence's items); entries of another type are skipped.
  var n: csize_t
  check zen_table_entries(c, h, addr n), "items (" & id & ")"
  for i in 0 ..< int(n):
    var k: zen_key_t
    var d: zen_value_data_t
    check zen_table_entry_at(c, csize_t(i), addr k, addr d), "items (" & id & ")"
    var ok: bool
    let v = from_data[T](d, ok)
    if ok: result.add v

iterator items*[T](self: CrdtZenSet[T]): T =
  ## Every member (a snapshot taken when the loop starts).
  for v in entry_values[T](self.ctx.handle.h, self.h, self.id): yield v

proc track*[T](self: CrdtZenSet[T], callback: proc (changes: seq[CrdtChange[T]], zid: ZID) {.gcsafe.}): ZID {.discardable.} =
  ## Calls `callback` with model_citizen's `ZenSet` changes (`{Added}` / `{Removed}` with
  ## the member), inside `boop`.
  track_entries[T](self.ctx, self.h, callback, proc (ev: ptr zen_table_change_t): seq[CrdtChange[T]] =
    entry_changes[T](ev, false, proc (d: zen_value_data_t, ok: var bool): T = from_data[T](d, ok)))

proc track*[T](self: CrdtZenSet[T], callback: proc (changes: seq[CrdtChange[T]]) {.gcsafe.}): ZID {.discardable.} =
  self.track(proc (changes: seq[CrdtChange[T]], zid: ZID) {.gcsafe.} = callback(changes))

template changes*[T](self: CrdtZenSet[T], body: untyped): ZID =
  ## model_citizen's `changes:` for a set: `change.item` is the member; `zid` and the
  ## flags (as for a table) injected.
  self.track proc (changes: seq[CrdtChange[T]], zid {.inject.}: ZID) {.gcsafe.} =
    for change {.inject.} in changes:
      inject_change_flags(change)
      body

# ---- sequences (1.5) ----------------------------------------------------------------------

proc init*[T](_: type CrdtZenSeq[T], ctx: CrdtContext, id: string, mode = FastLocal,
              owner = 0'u64): CrdtZenSeq[T] =
  ## Opens sequence `id` (created if new here; a peer's of that id is the same sequence;
  ## tables, sets and sequences may share a name); `owner` as for `CrdtZenTable`. Raises
  ## ZEN_ERR_WRONG_TYPE if it holds another type.
  var o = table_options(mode, LastWriterWins, "", owner)
  var h: zen_table_t
  check zen_seq_open(ctx.handle.h, id.cstring, csize_t(id.len), zen_kind(T), addr o, addr h),
    "CrdtZenSeq.init(" & id & ")"
  CrdtZenSeq[T](ctx: ctx, h: h, id: id)

proc ctx*[T](self: CrdtZenSeq[T]): CrdtContext = self.ctx

proc add*[T](self: CrdtZenSeq[T], item: T) =
  ## Appends `item` on every peer.
  var keep: string
  var d = to_data(item, keep)
  check zen_seq_push(self.ctx.handle.h, self.h, addr d), "add (" & self.id & ")"

proc insert*[T](self: CrdtZenSeq[T], item: T, i = 0) =
  ## Inserts `item` at index `i` (0 ..= len), as `system.insert` does for a seq.
  var keep: string
  var d = to_data(item, keep)
  check zen_seq_insert(self.ctx.handle.h, self.h, csize_t(i), addr d), "insert (" & self.id & ")"

proc `[]=`*[T](self: CrdtZenSeq[T], i: int, item: T) =
  ## Replaces the item at `i` (a concurrent removal of it wins).
  var keep: string
  var d = to_data(item, keep)
  check zen_seq_set(self.ctx.handle.h, self.h, csize_t(i), addr d), "[]= (" & self.id & ")"

proc delete*[T](self: CrdtZenSeq[T], i: int) =
  ## Removes the item at `i` on every peer; the items after it move down (order kept).
  check zen_seq_remove(self.ctx.handle.h, self.h, csize_t(i)), "delete (" & self.id & ")"

proc touch_at*[T](self: CrdtZenSeq[T], i: int) =
  ## Re-announces the item at `i` unchanged (`{Touched}` with its index on every peer).
  ## By index, not by item as model_citizen's `touch(item)`: a sequence may hold an item
  ## twice.
  check zen_seq_touch(self.ctx.handle.h, self.h, csize_t(i)), "touch_at (" & self.id & ")"

proc del*[T](self: CrdtZenSeq[T], i: int) =
  ## model_citizen's `del`: as `delete` (the order is kept: a replicated sequence has
  ## no cheaper removal).
  self.delete(i)

proc move*[T](self: CrdtZenSeq[T], src, dest: int) =
  ## Moves the item at `src` to `dest` (an index in the sequence without it).
  check zen_seq_move(self.ctx.handle.h, self.h, csize_t(src), csize_t(dest)), "move (" & self.id & ")"

proc `[]`*[T](self: CrdtZenSeq[T], i: int): T =
  var d: zen_value_data_t
  check zen_seq_get(self.ctx.handle.h, self.h, csize_t(i), addr d), "[] (" & self.id & ")"
  var ok: bool
  result = from_data[T](d, ok)

iterator items*[T](self: CrdtZenSeq[T]): T =
  ## Every item in order (a snapshot taken when the loop starts).
  for v in entry_values[T](self.ctx.handle.h, self.h, self.id): yield v

proc track*[T](self: CrdtZenSeq[T], callback: proc (changes: seq[CrdtChange[T]], zid: ZID) {.gcsafe.}): ZID {.discardable.} =
  ## Calls `callback` with model_citizen's `ZenSeq` changes (`{Added}` / `{Removed}` with
  ## the item, old `{Removed, Modified}` + new `{Added, Modified}` for a replaced one),
  ## each with the item's `index`, inside `boop`.
  track_entries[T](self.ctx, self.h, callback, proc (ev: ptr zen_table_change_t): seq[CrdtChange[T]] =
    entry_changes[T](ev, true, proc (d: zen_value_data_t, ok: var bool): T = from_data[T](d, ok)))

proc track*[T](self: CrdtZenSeq[T], callback: proc (changes: seq[CrdtChange[T]]) {.gcsafe.}): ZID {.discardable.} =
  self.track(proc (changes: seq[CrdtChange[T]], zid: ZID) {.gcsafe.} = callback(changes))

template changes*[T](self: CrdtZenSeq[T], body: untyped): ZID =
  ## model_citizen's `changes:` for a sequence: `change.item`, `change.index`; `zid`
  ## and the flags (as for a table) injected.
  self.track proc (changes: seq[CrdtChange[T]], zid {.inject.}: ZID) {.gcsafe.} =
    for change {.inject.} in changes:
      inject_change_flags(change)
      body

# ---- owner-only collections (1.5) -------------------------------------------------------

proc owner*(self: AnyCrdtZenCollection): uint64 =
  ## The owner of an owner-only table, set or sequence as this context knows it; 0 if
  ## anyone may write it.
  check zen_table_owner(self.ctx.handle.h, self.h, addr result), "owner (" & self.id & ")"

proc transfer*(self: AnyCrdtZenCollection, to: uint64) =
  ## Gives an owner-only table, set or sequence to peer `to`; from now on this context may
  ## not write it (`{OwnerChanged}` here and on every peer). Raises ZEN_ERR_NOT_OWNER
  ## unless this context owns it, ZEN_ERR_INVALID_ARGUMENT for one anyone may write.
  check zen_table_transfer(self.ctx.handle.h, self.h, to), "transfer (" & self.id & ")"

# ---- the simulator ------------------------------------------------------------------------

proc init*(_: type CrdtNet, seed: uint64, latency_ms = 25'u64, jitter_ms = 5'u64, loss = 0.0,
           duplicate = 0.0, reorder = 0.0, bandwidth_bytes_per_s = 0'u64): CrdtNet =
  ## A network whose every random choice follows `seed`.
  var link: zen_link_t
  check zen_link_default(addr link), "zen_link_default"
  link.latency_ms = latency_ms
  link.jitter_ms = jitter_ms
  link.loss = loss
  link.duplicate = duplicate
  link.reorder = reorder
  link.bandwidth_bytes_per_s = bandwidth_bytes_per_s
  var h: zen_net_t
  check zen_net_new(seed, addr link, addr h), "CrdtNet.init"
  result = CrdtNet()
  result.handle.h = h

proc close*(net: CrdtNet) =
  if net.handle.h.id != 0:
    zen_net_free(net.handle.h)
    net.handle.h.id = 0

proc attach*(net: CrdtNet, ctx: CrdtContext): int =
  ## Adds `ctx` as a host, connected to every online host; returns its index.
  var host: uint32
  check zen_net_attach(net.handle.h, ctx.handle.h, addr host), "attach"
  int(host)

proc set_online*(net: CrdtNet, host: int, online: bool) =
  check zen_net_set_online(net.handle.h, uint32(host), online), "set_online"

proc set_partition*(net: CrdtNet, groups: openArray[uint32]) =
  ## `groups[i]` is host i's group; all zeros heals.
  check zen_net_set_partition(net.handle.h, (if groups.len > 0: unsafeAddr groups[0] else: nil),
                              csize_t(groups.len)), "set_partition"

proc step*(net: CrdtNet, now_ms: uint64) =
  ## Delivers what is due, ticks every online attached context, sends. Call each
  ## context's `dispatch` after it for the callbacks.
  check zen_net_step(net.handle.h, now_ms), "step"

proc stats*(net: CrdtNet): tuple[delivered, dropped: uint64] =
  check zen_net_stats(net.handle.h, addr result.delivered, addr result.dropped), "stats"
