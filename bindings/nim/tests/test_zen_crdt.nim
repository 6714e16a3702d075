# The Nim binding on real contexts: every wrapped function, model_citizen's behaviours
# (two-change assignment, `changes:` names, `pause`, `untrack` -> {Closed}), corrections,
# WaitForSync, a worker-thread context, a lossy partitioned session through the
# simulator, errors with messages, use after close. Prints "N passed, M failed".

import std/[unittest, strutils, os, re, sets, options, sequtils]
import zen_crdt
import zen_crdt/raw

type
  Vector3 = object      # godot-nim's shape
    x, y, z: float32
  Vec2Arr = object      # a vmath-like type with accessors over an array
    arr: array[2, float32]
  Color = object        # chroma's shape
    r, g, b, a: float32
  Quat = object         # a rotation: QUAT by its name
    x, y, z, w: float32
  Tint = tuple[r, g, b, a: float32]
  Meters = distinct float64

proc x(v: Vec2Arr): float32 = v.arr[0]
proc y(v: Vec2Arr): float32 = v.arr[1]
proc `x=`(v: var Vec2Arr, f: float32) = v.arr[0] = f
proc `y=`(v: var Vec2Arr, f: float32) = v.arr[1] = f
type Cell = object     # a voxel cell: a key type of your own (Enu keys chunks by position)
  x, y: int
proc toZenKey(c: Cell): string = $c.x & "," & $c.y
proc fromZenKey(_: typedesc[Cell], k: string): Cell =
  let parts = k.split(',')
  Cell(x: parseInt(parts[0]), y: parseInt(parts[1]))
proc toZen(m: Meters): float64 = float64(m)
proc fromZen(_: typedesc[Meters], w: float64): Meters = Meters(w)
proc `==`(a, b: Meters): bool {.borrow.}

# The closing "N passed, M failed" line, beside unittest's own report.
type Tally = ref object of OutputFormatter
  passed, failed: int
method testEnded(t: Tally, r: TestResult) =
  if r.status == TestStatus.FAILED: inc t.failed
  elif r.status == TestStatus.OK: inc t.passed
let tally = Tally()
addOutputFormatter(defaultConsoleFormatter())
addOutputFormatter(tally)

proc ms(t: int): uint64 = uint64(t * 16)

template scenario(name: string, body: untyped) =
  ## A test whose variables live in a proc, so everything it made is destroyed when it
  ## ends (valgrind then sees any leak of the binding, not the test's globals).
  test name:
    proc run() =
      body
    run()

proc pair(): (CrdtContext, CrdtContext) =
  let a = CrdtContext.init(1)
  let b = CrdtContext.init(2)
  a.subscribe(b)
  (a, b)

proc pump(a, b: CrdtContext, t: var int, n = 8) =
  for _ in 1..n:
    inc t
    a.boop(ms(t))
    b.boop(ms(t))

template expect_status(expected: int32, body: untyped) =
  var got = -1'i32
  var msg = ""
  try:
    body
  except ZenCrdtError as e:
    got = e.status
    msg = e.msg
  check got == expected
  check msg.len > 0

suite "contexts":
  scenario "init, peer id, close is idempotent, calls after close raise":
    let c = CrdtContext.init(7)
    check c.peer_id == 7
    check not c.is_closed
    c.close()
    c.close()
    check c.is_closed
    expect_status ZEN_ERR_INVALID_HANDLE: c.tick(16)
    expect_status ZEN_ERR_INVALID_HANDLE: c.add_peer(2)

  scenario "bad peer ids and options raise with the library's message":
    expect_status ZEN_ERR_INVALID_ARGUMENT: discard CrdtContext.init(0)
    var o = default_options()
    o.tick_interval_ms = 0
    try:
      discard CrdtContext.init(1, o)
      check false
    except ZenCrdtError as e:
      check e.status == ZEN_ERR_INVALID_ARGUMENT
      check "tick_interval_ms" in e.msg

  scenario "save, close, load: the loaded context rejoins and catches up":
    var (a, b) = pair()
    var t = 0
    var hp = CrdtZenValue[int].init(b, "hp", policy = Max)
    hp.value = 70
    var name = CrdtZenValue[string].init(a, "name", mode = WaitForSync)
    name.value = "ada"
    pump(a, b, t, 20)
    let saved = b.save()
    check saved.len > 16
    b.close()
    a.remove_peer(2)
    CrdtZenValue[int].init(a, "hp").value = 90
    pump(a, a, t, 1)
    let back = CrdtContext.load(2, saved)
    var created = 0
    for ev in back.poll_changes:
      if ev.kind == ZEN_CHANGE_CREATED: inc created
    check created == 2
    check CrdtZenValue[int].init(back, "hp").value == 70
    a.subscribe(back)
    pump(a, back, t, 30)
    check CrdtZenValue[int].init(back, "hp").value == 90
    check CrdtZenValue[string].init(back, "name").value == "ada"
    # Peer 1 wrote in that save without saving it; a truncated save loads nothing.
    expect_status ZEN_ERR_INVALID_ARGUMENT: discard CrdtContext.load(1, saved)
    expect_status ZEN_ERR_DECODE: discard CrdtContext.load(2, saved[0 ..< 20])
    expect_status ZEN_ERR_DECODE: discard CrdtContext.load(2, newSeq[byte]())
    let path = getTempDir() / ("zen_nim_save_" & $getCurrentProcessId() & ".zen")
    back.save_file(path)
    let again = CrdtContext.load_file(2, path)
    check CrdtZenValue[int].init(again, "hp").value == 90
    removeFile(path)
    expect_status ZEN_ERR_IO: discard CrdtContext.load_file(2, path)
    expect_status ZEN_ERR_IO: back.save_file("/nonexistent-dir/x.zen")
    back.close()
    expect_status ZEN_ERR_INVALID_HANDLE: discard back.save()

  scenario "options reach the library":
    var o = default_options()
    o.max_values = 1
    let c = CrdtContext.init(1, o)
    discard CrdtZenValue[int].init(c, "one")
    expect_status ZEN_ERR_TOO_LARGE: discard CrdtZenValue[int].init(c, "two")

  scenario "target_message_bytes splits a tick's writes into datagram-sized messages":
    var o = default_options()
    o.target_message_bytes = 100
    expect_status ZEN_ERR_INVALID_ARGUMENT: discard CrdtContext.init(1, o)
    o.target_message_bytes = 1200
    let c = CrdtContext.init(1, o)
    c.add_peer(2)
    for k in 0 ..< 300:
      let v = CrdtZenValue[int].init(c, "entity/" & $k)
      v.value = k * 1_000_003
    c.tick(16)
    var sizes: seq[int]
    for msg in c.outbound:
      sizes.add msg.bytes.len
    check sizes.len >= 3
    for n in sizes:
      check n <= 1200

  scenario "contexts on a bus: membership follows the bus, values and callbacks flow":
    let bus = CrdtBus.init()
    let a = CrdtContext.init(1)
    let b = CrdtContext.init(2)
    let ea = bus.join(1, capacity = 64)
    let eb = bus.handle.join(2)
    expect_status ZEN_ERR_INVALID_ARGUMENT: discard bus.join(2)
    var pos = CrdtZenValue[int].init(a, "pos")
    pos.value = 42
    var now = 0'u64
    for _ in 0 ..< 60:
      now += 16
      a.boop(ea, now)
      b.boop(eb, now)
    let seen = CrdtZenValue[int].init(b, "pos")
    check seen.value == 42
    check pos.sync_state == Converged
    check ea.stats.sent > 0 and eb.stats.received > 0
    expect_status ZEN_ERR_INVALID_ARGUMENT: a.boop(eb, now)  # b's endpoint
    eb.close()
    eb.close()
    a.boop(ea, now + 16)
    check a.metrics.peers == 0
    expect_status ZEN_ERR_INVALID_HANDLE: b.boop(eb, now)
    bus.close()
    expect_status ZEN_ERR_INVALID_HANDLE: discard bus.join(3)

  scenario "ENet on 127.0.0.1: a host and a client converge; a taken peer id is refused":
    let h = CrdtContext.init(1)
    let c = CrdtContext.init(2)
    let eh = enet_listen("127.0.0.1:0", 1)
    let port = eh.local_port
    check port > 0
    let ec = enet_connect("127.0.0.1:" & $port, 2)
    var hv = CrdtZenValue[int].init(h, "from_host")
    hv.value = 1
    var cv = CrdtZenValue[int].init(c, "from_client")
    cv.value = 2
    var now = 0'u64
    for _ in 0 ..< 3000:
      now += 2
      h.boop(eh, now)
      c.boop(ec, now)
      if hv.sync_state == Converged and cv.sync_state == Converged: break
      sleep 1
    check CrdtZenValue[int].init(c, "from_host").value == 1
    check CrdtZenValue[int].init(h, "from_client").value == 2
    let dup = CrdtContext.init(2)
    let ed = enet_connect("127.0.0.1:" & $port, 2)
    var refused = false
    for _ in 0 ..< 3000:
      now += 2
      h.boop(eh, now)
      try:
        dup.boop(ed, now)
      except ZenCrdtError as e:
        check e.status == ZEN_ERR_TRANSPORT
        check "already taken" in e.msg
        refused = true
        break
      sleep 1
    check refused
    expect_status ZEN_ERR_INVALID_ARGUMENT: discard enet_listen("localhost:1", 3)

  scenario "two ENet mesh peers dial each other and converge":
    let a = CrdtContext.init(1)
    let b = CrdtContext.init(2)
    let ea = enet_mesh("127.0.0.1:0", 1)
    let eb = enet_mesh("127.0.0.1:0", 2)
    ea.dial("127.0.0.1:" & $eb.local_port)
    eb.dial("127.0.0.1:" & $ea.local_port)  # both ways: one connection is kept
    expect_status ZEN_ERR_INVALID_ARGUMENT: ea.dial("nowhere")
    var v = CrdtZenValue[float].init(b, "speed", mode = WaitForSync)
    v.value = 4.5
    let seen = CrdtZenValue[float].init(a, "speed")
    var now = 0'u64
    for _ in 0 ..< 5000:
      now += 2
      a.boop(ea, now)
      b.boop(eb, now)
      if seen.value == 4.5 and v.sync_state == Converged: break
      sleep 1
    check seen.value == 4.5
    check a.metrics.peers == 1 and b.metrics.peers == 1

  scenario "a bridge puts a game's bus contexts behind one ENet socket (Enu's shape)":
    let server = CrdtContext.init(10)
    let es = enet_listen("127.0.0.1:0", 10)
    let at = "127.0.0.1:" & $es.local_port
    let bus = CrdtBus.init()
    let main = CrdtContext.init(1)
    let worker = CrdtContext.init(2)
    let em = bus.join(1)
    let ew = bus.join(2)
    let near = bus.join_relay()
    check near.peer_id == 0
    expect_status ZEN_ERR_INVALID_ARGUMENT: main.boop(near, 16)  # a relay has no context
    expect_status ZEN_ERR_INVALID_ARGUMENT: discard bridge(near, em)  # em is not a relay
    let far = enet_connect_relay(at)
    let br = bridge(near, far)
    expect_status ZEN_ERR_INVALID_HANDLE: discard near.stats  # the bridge owns it now
    var door = CrdtZenValue[bool].init(main, "door", mode = WaitForSync)
    door.value = true
    let seen = CrdtZenValue[bool].init(server, "door")
    var now = 0'u64
    for _ in 0 ..< 5000:
      now += 2
      server.boop(es, now)
      main.boop(em, now)
      worker.boop(ew, now)
      if seen.value and door.sync_state == Converged and server.metrics.peers == 2 and
          worker.metrics.peers == 2: break
      sleep 1
    check seen.value == true
    check door.sync_state == Converged
    check server.metrics.peers == 2
    let st = br.stats
    check st.forwarded > 0
    check st.carried == 3
    check st.refused == 0
    br.close()
    br.close()
    expect_status ZEN_ERR_INVALID_HANDLE: discard br.stats
    for _ in 0 ..< 3000:
      now += 2
      server.boop(es, now)
      if server.metrics.peers == 0: break
      sleep 1
    check server.metrics.peers == 0

  scenario "drivers pump contexts on library threads while this thread writes and waits":
    let bus = CrdtBus.init()
    let a = CrdtContext.init(1)
    let b = CrdtContext.init(2)
    let ea = bus.join(1)
    let eb = bus.join(2)
    expect_status ZEN_ERR_INVALID_ARGUMENT: discard a.drive(eb)  # b's endpoint
    expect_status ZEN_ERR_INVALID_ARGUMENT: discard a.drive(ea, tick_ms = 0)
    let da = a.drive(ea, tick_ms = 4)
    let db = b.drive(eb, tick_ms = 4)
    expect_status ZEN_ERR_INVALID_HANDLE: discard ea.stats  # the driver owns it
    for _ in 0 ..< 10000:
      if a.metrics.peers == 1: break
      sleep 1
    var hp = CrdtZenValue[int].init(a, "hp", mode = WaitForSync)
    hp.value = 77
    hp.wait_converged(10_000)
    da.check()
    let seen = CrdtZenValue[int].init(b, "hp")
    seen.wait_converged(10_000)
    check seen.value == 77
    db.close()
    db.close()
    for _ in 0 ..< 5000:
      if a.metrics.peers == 0: break
      sleep 1
    check a.metrics.peers == 0
    da.close()

  scenario "peers: add, remove, errors":
    let c = CrdtContext.init(1)
    c.add_peer(2)
    expect_status ZEN_ERR_INVALID_ARGUMENT: c.add_peer(0)
    c.remove_peer(2)
    expect_status ZEN_ERR_UNKNOWN_PEER: c.remove_peer(77)

  scenario "a value used after its context is closed raises":
    let c = CrdtContext.init(1)
    var v = CrdtZenValue[float].init(c, "hp")
    v.value = 3.0
    c.close()
    expect_status ZEN_ERR_INVALID_HANDLE: v.value = 4.0
    expect_status ZEN_ERR_INVALID_HANDLE: discard v.value
    expect_status ZEN_ERR_INVALID_HANDLE: discard v.sync_state

suite "types":
  scenario "bool, integers, floats, strings, bytes":
    let c = CrdtContext.init(1)
    var b = CrdtZenValue[bool].init(c, "b")
    var i = CrdtZenValue[int32].init(c, "i")
    var f = CrdtZenValue[float32].init(c, "f")
    var s = CrdtZenValue[string].init(c, "s")
    var bytes = CrdtZenValue[seq[byte]].init(c, "bytes")
    b.value = true
    i.value = -5
    f.value = 2.5
    check s.value == ""
    s.value = "héllo " & repeat('x', 3000)
    bytes.value = @[1'u8, 2, 3]
    check b.value and i.value == -5 and f.value == 2.5
    check s.value == "héllo " & repeat('x', 3000)
    check bytes.value == @[1'u8, 2, 3]
    bytes.value = @[]
    check bytes.value.len == 0

  scenario "vectors, colors, quaternions and tuples by structure; hooks for the rest":
    let c = CrdtContext.init(1)
    check zen_kind(Vector3) == ZEN_TYPE_VEC3
    check zen_kind(Vec2Arr) == ZEN_TYPE_VEC2
    check zen_kind(Color) == ZEN_TYPE_COLOR
    check zen_kind(Tint) == ZEN_TYPE_COLOR
    check zen_kind(Quat) == ZEN_TYPE_QUAT
    check zen_kind(Meters) == ZEN_TYPE_F64
    var p = CrdtZenValue[Vector3].init(c, "p")
    var v2 = CrdtZenValue[Vec2Arr].init(c, "v2")
    var col = CrdtZenValue[Color].init(c, "col")
    var tint = CrdtZenValue[Tint].init(c, "tint")
    var q = CrdtZenValue[Quat].init(c, "q")
    var d = CrdtZenValue[Meters].init(c, "d")
    check q.value == Quat(x: 0, y: 0, z: 0, w: 1)  # never written: the identity
    p.value = Vector3(x: 1, y: 2, z: 3)
    var w: Vec2Arr
    w.x = 4
    w.y = 5
    v2.value = w
    col.value = Color(r: 1, g: 0.5, b: 0, a: 1)
    tint.value = (r: 0.25'f32, g: 0.5'f32, b: 0.75'f32, a: 1'f32)
    q.value = Quat(x: 0, y: 0.5, z: 0, w: 0.5)
    d.value = Meters(12.5)
    check p.value == Vector3(x: 1, y: 2, z: 3)
    check v2.value.y == 5
    check col.value.g == 0.5
    check tint.value.b == 0.75
    check q.value.y == 0.5
    check d.value == Meters(12.5)
    check not compiles(CrdtZenValue[ref int].init(c, "nope"))

  scenario "a type mismatch between peers raises wrong type":
    let c = CrdtContext.init(1)
    discard CrdtZenValue[Vector3].init(c, "pos")
    expect_status ZEN_ERR_WRONG_TYPE: discard CrdtZenValue[float].init(c, "pos")
    expect_status ZEN_ERR_INVALID_UTF8: discard CrdtZenValue[float].init(c, "\xff\xfe")
    expect_status ZEN_ERR_INVALID_ARGUMENT: discard CrdtZenValue[Quat].init(c, "rot", policy = Max)

suite "model_citizen behaviours":
  scenario "an assignment is a pair of changes: old {Removed, Modified}, new {Added, Modified}":
    let (a, b) = pair()
    var t = 0
    var hp = CrdtZenValue[float].init(a, "hp")
    hp.value = 10
    pump(a, b, t)
    let bhp = CrdtZenValue[float].init(b, "hp")
    var got: seq[(float, set[ChangeKind])]
    bhp.track proc(changes: seq[CrdtChange[float]]) {.gcsafe.} =
      {.cast(gcsafe).}:
        for c in changes: got.add (c.item, c.changes)
    hp.value = 20
    pump(a, b, t)
    check got == @[(10.0, {Removed, Modified}), (20.0, {Added, Modified})]

  scenario "`changes:` injects change, zid, added, removed, modified, closed":
    let (a, b) = pair()
    var t = 0
    var pos = CrdtZenValue[Vector3].init(a, "pos")
    pos.value = Vector3(x: 1)
    pump(a, b, t)
    let bpos = CrdtZenValue[Vector3].init(b, "pos")
    var log: seq[string]
    var seen_zid: ZID
    let zid = bpos.changes:
      {.cast(gcsafe).}:
        seen_zid = zid
        if added(Vector3(x: 2)): log.add "added 2"
        if removed: log.add "removed " & $change.item.x
        if modified and added: log.add "modified"
        if closed: log.add "closed"
    pos.value = Vector3(x: 2)
    pump(a, b, t)
    check seen_zid == zid
    check log == @["removed 1.0", "added 2", "modified"]
    bpos.untrack zid
    check log[^1] == "closed"
    pos.value = Vector3(x: 3)
    pump(a, b, t)
    check log[^1] == "closed"  # untracked: nothing more

  scenario "local writes notify at the next boop, with this peer as origin":
    let c = CrdtContext.init(1)
    var v = CrdtZenValue[int].init(c, "n")
    var origins: seq[uint64]
    v.track proc(changes: seq[CrdtChange[int]]) {.gcsafe.} =
      {.cast(gcsafe).}:
        for ch in changes:
          if Added in ch.changes: origins.add ch.origin
    v.value = 1
    check origins.len == 0  # not during the assignment (model_citizen notifies at once)
    c.boop(16)
    check origins == @[1'u64]

  scenario "pause hides the paused callback's own writes, not others' callbacks":
    let c = CrdtContext.init(1)
    var v = CrdtZenValue[int].init(c, "n")
    var mine, others = 0
    let zid = v.track proc(changes: seq[CrdtChange[int]]) {.gcsafe.} =
      {.cast(gcsafe).}: inc mine
    v.track proc(changes: seq[CrdtChange[int]]) {.gcsafe.} =
      {.cast(gcsafe).}: inc others
    v.pause zid:
      v.value = 5
    c.boop(16)
    check mine == 0 and others == 1
    v.value = 6
    c.boop(32)
    check mine == 1 and others == 2

  scenario "a contested write is flagged as a correction on the peer whose write lost":
    let (a, b) = pair()
    var t = 0
    var fa = CrdtZenValue[int].init(a, "flag")
    pump(a, b, t)
    var fb = CrdtZenValue[int].init(b, "flag")
    var corrections = 0
    for v in [fa, fb]:
      v.track proc(changes: seq[CrdtChange[int]]) {.gcsafe.} =
        {.cast(gcsafe).}:
          for ch in changes:
            if ch.is_correction and Added in ch.changes: inc corrections
    fa.value = 1
    fb.value = 2
    pump(a, b, t, 12)
    check corrections == 1
    check fa.value == fb.value

  scenario "WaitForSync holds the acknowledged value until every member has it":
    let (a, b) = pair()
    var t = 0
    var score = CrdtZenValue[int].init(a, "score", mode = WaitForSync, policy = Max)
    pump(a, b, t)
    check score.sync_mode == WaitForSync and score.correction_policy == Max
    score.value = 10
    check score.value == 0  # not acknowledged yet
    var states: seq[SyncState]
    score.track proc(changes: seq[CrdtChange[int]]) {.gcsafe.} =
      {.cast(gcsafe).}:
        for ch in changes: states.add ch.sync_state
    pump(a, b, t, 12)
    check score.value == 10
    check score.sync_state == Converged
    check Converged in states
    score.set_sync_mode(FastLocal)
    check score.sync_mode == FastLocal
    score.set_correction_policy(Max)  # the one it has: fine
    expect_status ZEN_ERR_INVALID_ARGUMENT: score.set_correction_policy(TakeAverage)

  scenario "remove replicates and reads raise removed":
    let (a, b) = pair()
    var t = 0
    var door = CrdtZenValue[bool].init(a, "door")
    door.value = true
    pump(a, b, t)
    door.remove()
    pump(a, b, t)
    expect_status ZEN_ERR_REMOVED: discard door.value
    expect_status ZEN_ERR_REMOVED: discard CrdtZenValue[bool].init(b, "door").value

  scenario "wait_converged times out on the ticking thread":
    let c = CrdtContext.init(1)
    c.add_peer(2)
    var v = CrdtZenValue[int].init(c, "n", mode = WaitForSync)
    v.value = 1
    c.tick(16)
    expect_status ZEN_ERR_TIMEOUT: v.wait_converged(5)

suite "initial changes, touch, local-only values (1.3)":
  scenario "what was already there arrives is_initial; later changes are not":
    let (a, b) = pair()
    var t = 0
    var hp = CrdtZenValue[int].init(a, "hp")
    hp.value = 40
    # b declared it before it heard of it: its first content is initial.
    let bhp = CrdtZenValue[int].init(b, "hp")
    var got: seq[(int, set[ChangeKind], bool)]
    bhp.track proc(changes: seq[CrdtChange[int]]) {.gcsafe.} =
      {.cast(gcsafe).}:
        for c in changes:
          if SyncStateChanged notin c.changes: got.add (c.item, c.changes, c.is_initial)
    pump(a, b, t)
    check got == @[(40, {Added, Modified}, true)]
    hp.value = 41
    pump(a, b, t)
    check got[^2 .. ^1] == @[(40, {Removed, Modified}, false), (41, {Added, Modified}, false)]

  scenario "touch: {Touched} here and on the other peer, value unchanged":
    let (a, b) = pair()
    var t = 0
    var door = CrdtZenValue[bool].init(a, "door")
    expect_status(ZEN_ERR_INVALID_ARGUMENT): door.touch()  # never written
    door.value = true
    pump(a, b, t)
    let bdoor = CrdtZenValue[bool].init(b, "door")
    var here, there: seq[(bool, set[ChangeKind], uint64)]
    door.track proc(changes: seq[CrdtChange[bool]]) {.gcsafe.} =
      {.cast(gcsafe).}:
        for c in changes:
          if SyncStateChanged notin c.changes: here.add (c.item, c.changes, c.origin)
    let zid = bdoor.changes:
      {.cast(gcsafe).}:
        if touched: there.add (change.item, change.changes, change.origin)
    bdoor.touch()
    pump(a, b, t)
    check here == @[(true, {Touched}, 2'u64)]
    check there == @[(true, {Touched}, 2'u64)]
    check door.value and bdoor.value
    # model_citizen's touch(value): a new value is a write, the same one a touch.
    door.touch(false)
    pump(a, b, t)
    check not bdoor.value
    check there.len == 1
    bdoor.untrack zid
    door.remove()
    expect_status(ZEN_ERR_REMOVED): door.touch()

  scenario "sync = false: same callbacks, never on the wire, chosen once":
    let (a, b) = pair()
    let (c, d) = pair()
    var t = 0
    var ui = CrdtZenValue[string].init(a, "ui", sync = false)
    check not ui.sync
    var seen: seq[string]
    ui.track proc(changes: seq[CrdtChange[string]]) {.gcsafe.} =
      {.cast(gcsafe).}:
        for ch in changes:
          if Added in ch.changes: seen.add ch.item
    for i in 1..10:
      ui.value = "menu " & $i
      pump(a, b, t, 1)
      pump(c, d, t, 1)  # the same schedule, nothing written
    check seen.len == 10 and seen[^1] == "menu 10"
    check ui.sync_state == LocalOnly
    check a.metrics.bytes_out == c.metrics.bytes_out
    var h: zen_value_t
    check zen_value_open(b.handle, "ui", 2, addr h) == ZEN_ERR_UNKNOWN_VALUE
    expect_status(ZEN_ERR_INVALID_ARGUMENT): discard CrdtZenValue[string].init(a, "ui")
    check CrdtZenValue[int].init(a, "shared").sync

suite "owner-only values (1.4)":
  scenario "only the owner writes; a transfer moves the right, every peer hears of it":
    let (a, b) = pair()
    var t = 0
    var ball = CrdtZenValue[int].init(a, "ball", owner = 1)
    check ball.owner == 1
    ball.value = 5
    pump(a, b, t)
    var bball = CrdtZenValue[int].init(b, "ball")
    check bball.owner == 1 and bball.value == 5
    expect_status(ZEN_ERR_NOT_OWNER): bball.value = 6
    expect_status(ZEN_ERR_NOT_OWNER): bball.transfer(2)
    expect_status(ZEN_ERR_NOT_OWNER): bball.touch()
    var told: seq[(set[ChangeKind], uint64)]
    let zid = bball.changes:
      {.cast(gcsafe).}:
        if owner_changed: told.add (change.changes, change.origin)
    ball.transfer(2)
    check ball.owner == 2
    expect_status(ZEN_ERR_NOT_OWNER): ball.value = 7
    pump(a, b, t)
    check told == @[({OwnerChanged}, 2'u64)]
    check bball.owner == 2
    bball.value = 8
    pump(a, b, t)
    check ball.value == 8
    bball.untrack zid
    check CrdtZenValue[int].init(a, "free").owner == 0
    expect_status(ZEN_ERR_INVALID_ARGUMENT): CrdtZenValue[int].init(a, "free").transfer(2)

suite "tables (1.5)":
  scenario "CrdtZenTable: []=, [], del, len, pairs; model_citizen's changes on both peers":
    let (a, b) = pair()
    var t = 0
    var blocks = CrdtZenTable[int, string].init(a, "blocks")
    var bblocks = CrdtZenTable[int, string].init(b, "blocks")
    var seen: seq[(set[ChangeKind], int, string, uint64)]
    let zid = bblocks.changes:
      {.cast(gcsafe).}:
        seen.add (change.changes, change.item.key, change.item.value, change.origin)
    blocks[7] = "stone"
    blocks[-2] = "door"
    check blocks[7] == "stone" and blocks.len == 2
    pump(a, b, t)
    check seen == @[({Added}, 7, "stone", 1'u64), ({Added}, -2, "door", 1'u64)]
    check bblocks.len == 2 and 7 in bblocks and bblocks.getOrDefault(3, "none") == "none"
    var listed: seq[(int, string)]
    for k, v in bblocks: listed.add (k, v)
    check listed == @[(-2, "door"), (7, "stone")]
    seen.setLen 0
    blocks[7] = "iron"
    blocks.del(-2)
    pump(a, b, t)
    check seen == @[({Removed, Modified}, 7, "stone", 1'u64), ({Added, Modified}, 7, "iron", 1'u64),
                    ({Removed}, -2, "door", 1'u64)]
    expect KeyError: discard bblocks[-2]
    check a.metrics.table_entries == 1
    bblocks.untrack zid
    check seen[^1][0] == {Closed}

  scenario "string keys, vector values, a key type of your own, WaitForSync, errors":
    let (a, b) = pair()
    var t = 0
    var units = CrdtZenTable[string, Vector3].init(a, "units")
    units["bot"] = Vector3(x: 1, y: 2, z: 3)
    pump(a, b, t)
    check CrdtZenTable[string, Vector3].init(b, "units")["bot"].z == 3
    expect_status(ZEN_ERR_WRONG_TYPE): discard CrdtZenTable[string, int].init(b, "units")
    expect_status(ZEN_ERR_TOO_LARGE): units["k".repeat(400)] = Vector3()
    var chunks = CrdtZenTable[Cell, int].init(a, "chunks")
    chunks[Cell(x: 1, y: -2)] = 5
    pump(a, b, t)
    var got: seq[(Cell, int)]
    for k, v in CrdtZenTable[Cell, int].init(b, "chunks"): got.add (k, v)
    check got == @[(Cell(x: 1, y: -2), 5)]
    var score = CrdtZenTable[string, int].init(a, "score", mode = WaitForSync, policy = Max)
    score["red"] = 3
    check "red" notin score and score.sync_state == LocalOnly
    pump(a, b, t)
    check score["red"] == 3 and score.sync_state == Converged
    a.close()
    expect_status(ZEN_ERR_INVALID_HANDLE): units["x"] = Vector3()

  scenario "CrdtZenSet: incl, excl, contains, items; an add wins over a concurrent excl":
    let (a, b) = pair()
    var t = 0
    var flags = CrdtZenSet[string].init(a, "flags")
    var bflags = CrdtZenSet[string].init(b, "flags")
    var seen: seq[(set[ChangeKind], string)]
    let zid = bflags.changes:
      {.cast(gcsafe).}:
        seen.add (change.changes, change.item)
    flags.incl "door_open"
    flags.incl "boss_dead"
    check "door_open" in flags and flags.len == 2
    pump(a, b, t)
    check seen == @[({Added}, "boss_dead"), ({Added}, "door_open")] or
          seen == @[({Added}, "door_open"), ({Added}, "boss_dead")]
    seen.setLen 0
    bflags.excl "door_open"
    flags.incl "door_open"
    flags.excl "boss_dead"
    pump(a, b, t, 12)
    check "door_open" in flags and "door_open" in bflags and "boss_dead" notin bflags
    var members: seq[string]
    for m in bflags: members.add m
    check members == @["door_open"]
    check ({Removed}, "boss_dead") in seen
    bflags.untrack zid
    var cells = CrdtZenSet[Vector3].init(a, "cells")
    cells.incl Vector3(x: 1, y: 2, z: 3)
    check Vector3(x: 1, y: 2, z: 3) in cells and Vector3(x: 3, y: 2, z: 1) notin cells
    expect_status(ZEN_ERR_WRONG_TYPE): discard CrdtZenSet[int].init(a, "flags")
    discard CrdtZenTable[string, string].init(a, "flags")  # a table may share the name

  scenario "CrdtZenSeq: add, insert, []=, delete, move, items; one order everywhere":
    let (a, b) = pair()
    var t = 0
    var units = CrdtZenSeq[int].init(a, "units")
    var bunits = CrdtZenSeq[int].init(b, "units")
    var seen: seq[(set[ChangeKind], int, int)]
    let zid = bunits.changes:
      {.cast(gcsafe).}:
        seen.add (change.changes, change.item, change.index)
    for x in [10, 20, 30]: units.add x
    units.insert(15, 1)
    check units[1] == 15 and units.len == 4
    pump(a, b, t)
    var got: seq[int]
    for x in bunits: got.add x
    check got == @[10, 15, 20, 30]
    check ({Added}, 15, 1) in seen
    # Both insert at the same place at once: both items, one order on both.
    units.insert(17, 2)
    bunits.insert(18, 2)
    pump(a, b, t, 12)
    var ga, gb: seq[int]
    for x in units: ga.add x
    for x in bunits: gb.add x
    check ga == gb and ga.len == 6
    seen.setLen 0
    units[0] = 11
    units.move(0, 5)
    units.delete(0)
    pump(a, b, t)
    check bunits[4] == 11 and bunits.len == 5
    check seen.anyIt(it[0] == {Removed} and it[2] == 0)
    bunits.untrack zid
    expect_status(ZEN_ERR_INVALID_ARGUMENT): units.insert(1, 99)
    expect_status(ZEN_ERR_WRONG_TYPE): discard CrdtZenSeq[string].init(a, "units")

  scenario "owner-only tables, sets and sequences: only the owner writes; transfers heard":
    let (a, b) = pair()
    var t = 0
    var army = CrdtZenTable[int, string].init(a, "army", owner = 1)
    var perks = CrdtZenSet[string].init(a, "perks", owner = 1)
    var queue = CrdtZenSeq[int].init(a, "queue", owner = 1)
    army[1] = "knight"
    perks.incl "speed"
    queue.add 5
    check army.owner == 1 and perks.owner == 1 and queue.owner == 1
    var barmy = CrdtZenTable[int, string].init(b, "army")
    var told: seq[(set[ChangeKind], bool, uint64)]
    let zid = barmy.changes:
      {.cast(gcsafe).}:
        if owner_changed: told.add (change.changes, change.is_initial, change.origin)
    pump(a, b, t)
    var bperks = CrdtZenSet[string].init(b, "perks")
    var bqueue = CrdtZenSeq[int].init(b, "queue")
    check barmy.owner == 1 and barmy[1] == "knight" and "speed" in bperks and bqueue[0] == 5
    check told == @[({OwnerChanged}, true, 1'u64)]
    expect_status(ZEN_ERR_NOT_OWNER): barmy[2] = "rogue"
    expect_status(ZEN_ERR_NOT_OWNER): barmy.del(1)
    expect_status(ZEN_ERR_NOT_OWNER): bperks.incl "x"
    expect_status(ZEN_ERR_NOT_OWNER): bqueue.add 1
    expect_status(ZEN_ERR_NOT_OWNER): bqueue.transfer(2)
    check barmy.len == 1 and bqueue.len == 1
    told.setLen 0
    army.transfer(2)
    check army.owner == 2
    expect_status(ZEN_ERR_NOT_OWNER): army[3] = "late"
    pump(a, b, t)
    check told == @[({OwnerChanged}, false, 2'u64)]
    barmy[2] = "archer"
    pump(a, b, t)
    check army[2] == "archer" and army.len == 2
    barmy.untrack zid
    check CrdtZenTable[int, int].init(a, "free").owner == 0
    expect_status(ZEN_ERR_INVALID_ARGUMENT): CrdtZenSet[int].init(a, "free").transfer(2)

  scenario "touch on a table, a set and a sequence: every peer hears {Touched}":
    let (a, b) = pair()
    var t = 0
    var blocks = CrdtZenTable[int, string].init(a, "blocks")
    var flags = CrdtZenSet[string].init(a, "flags")
    var units = CrdtZenSeq[int].init(a, "units")
    blocks[1] = "stone"
    flags.incl "door"
    units.add 5
    var bblocks = CrdtZenTable[int, string].init(b, "blocks")
    var bflags = CrdtZenSet[string].init(b, "flags")
    var bunits = CrdtZenSeq[int].init(b, "units")
    pump(a, b, t)
    var seen: seq[string]
    let z1 = bblocks.changes:
      {.cast(gcsafe).}:
        if touched: seen.add "table " & change.item.value
    let z2 = bflags.changes:
      {.cast(gcsafe).}:
        if touched: seen.add "set " & change.item
    let z3 = bunits.changes:
      {.cast(gcsafe).}:
        if touched: seen.add "seq " & $change.item & "@" & $change.index
    blocks.touch(1, "stone")
    flags.touch("door")
    units.touch_at(0)
    pump(a, b, t)
    check seen == @["table stone", "set door", "seq 5@0"]
    blocks.touch(1, "iron")
    pump(a, b, t)
    check bblocks[1] == "iron"
    expect_status(ZEN_ERR_INVALID_ARGUMENT): units.touch_at(3)
    bblocks.untrack z1
    bflags.untrack z2
    bunits.untrack z3

suite "transport glue":
  scenario "outbound and receive_from carry a value between contexts":
    let a = CrdtContext.init(1)
    let b = CrdtContext.init(2)
    a.add_peer(2)
    b.add_peer(1)
    var v = CrdtZenValue[string].init(a, "name")
    v.value = "ada"
    var first: seq[byte]
    for t in 1..6:
      a.tick(ms(t))
      for msg in a.outbound:
        check msg.to == 0 or msg.to == 2
        if first.len == 0: first = msg.bytes
        b.receive_from(1, msg.bytes)
      b.tick(ms(t))
      for msg in b.outbound: a.receive(msg.bytes)
    check CrdtZenValue[string].init(b, "name").value == "ada"
    expect_status ZEN_ERR_DECODE: b.receive(@[1'u8, 2, 3])
    expect_status ZEN_ERR_UNKNOWN_PEER: CrdtContext.init(3).receive_from(1, first)
    expect_status ZEN_ERR_SENDER_MISMATCH: b.receive_from(3, first)
    check b.metrics.messages_rejected >= 1

  scenario "next_deadline_ms: now for pending work, none when idle, never in the past":
    let lone = CrdtContext.init(9)
    check lone.next_deadline_ms.is_none
    let a = CrdtContext.init(1)
    let b = CrdtContext.init(2)
    a.add_peer(2)
    b.add_peer(1)
    var v = CrdtZenValue[int].init(a, "n")
    v.value = 3
    check a.next_deadline_ms == some(0'u64)
    for t in 1..6:
      a.tick(ms(t))
      for msg in a.outbound: b.receive_from(1, msg.bytes)
      b.tick(ms(t))
      for msg in b.outbound: a.receive_from(2, msg.bytes)
    let at = a.next_deadline_ms
    check at.is_some and at.get >= ms(6)
    check a.metrics.rejected_updates == 0

  scenario "poll_changes gives the raw events to code without callbacks":
    let c = CrdtContext.init(1)
    var v = CrdtZenValue[int].init(c, "n")
    v.value = 4
    var n = 0
    for ev in c.poll_changes:
      var ok: bool
      check from_data[int](ev.new_value, ok) == 4 and ok
      discard from_data[string](ev.new_value, ok)
      check not ok
      inc n
    check n == 1

  scenario "a context on a worker thread, linked by handle":
    var chan: Channel[(zen_context_t, uint64)]
    var done: Channel[int]
    chan.open()
    done.open()
    let a = CrdtContext.init(1)
    var worker: Thread[(ptr Channel[(zen_context_t, uint64)], ptr Channel[int], zen_context_t)]
    proc work(args: (ptr Channel[(zen_context_t, uint64)], ptr Channel[int], zen_context_t)) {.thread.} =
      let b = CrdtContext.init(2)
      b.subscribe(args[2], 1)
      args[0][].send((b.handle, 2'u64))
      var v = CrdtZenValue[int].init(b, "from-worker")
      v.value = 42
      for t in 1..200:
        b.boop(uint64(t * 16))
        sleep(1)
      args[1][].send(1)
      discard args[0][].recv()  # keep b alive until the main thread is done
    createThread(worker, work, (addr chan, addr done, a.handle))
    let (bh, bpeer) = chan.recv()
    a.subscribe(bh, bpeer)
    var seen = 0
    for t in 1..400:
      a.boop(uint64(t * 16))
      try:
        seen = CrdtZenValue[int].init(a, "from-worker").value
      except ZenCrdtError:
        discard
      if seen == 42: break
      sleep(1)
    check seen == 42
    discard done.recv()
    chan.send((a.handle, 0'u64))
    joinThread(worker)
    chan.close()
    done.close()

suite "rooms and tokens":
  scenario "a host with a room and token admits its players and refuses a wrong token":
    let h = CrdtContext.init(1)
    let g = CrdtContext.init(2)
    let i = CrdtContext.init(3)
    var o = default_enet_options()
    o.timeout_ms = 2000
    let eh = enet_listen("127.0.0.1:0", 1, o, room = "arena", token = "secret")
    let at = "127.0.0.1:" & $eh.local_port
    let eg = enet_connect(at, 2, o, room = "arena", token = "secret")
    let ei = enet_connect(at, 3, o, room = "arena", token = "guess")
    var refused = ""
    var now = 0'u64
    for _ in 0 ..< 5000:
      now += 2
      h.boop(eh, now)
      g.boop(eg, now)
      if refused.len == 0:
        try:
          i.boop(ei, now)
        except ZenCrdtError as e:
          check e.status == ZEN_ERR_TRANSPORT
          refused = e.msg
      if refused.len > 0 and g.metrics.peers == 1: break
      sleep 2
    check "token" in refused
    check g.metrics.peers == 1
    expect_status ZEN_ERR_INVALID_ARGUMENT: discard enet_connect(at, 4, o, room = "r".repeat(65))

suite "the simulator":
  scenario "four players on a lossy, partitioned network converge":
    let net = CrdtNet.init(9, latency_ms = 20, jitter_ms = 10, loss = 0.05, duplicate = 0.01)
    var players: seq[CrdtContext]
    for id in 1'u64..4:
      let c = CrdtContext.init(id)
      check net.attach(c) == int(id) - 1
      players.add c
    var score = CrdtZenValue[int].init(players[0], "score", mode = WaitForSync, policy = Max)
    var now = 0'u64
    for _ in 1..20:
      now += 16
      net.step(now)
    net.set_partition([0'u32, 0, 1, 1])
    score.value = 10
    for _ in 1..60:
      now += 16
      net.step(now)
    check score.value == 0  # players 3 and 4 cannot acknowledge
    net.set_partition([0'u32, 0, 0, 0])
    for _ in 1..120:
      now += 16
      net.step(now)
      for p in players: p.dispatch()
    for p in players: check CrdtZenValue[int].init(p, "score").value == 10
    let st = net.stats
    check st.delivered > 0 and st.dropped > 0
    expect_status ZEN_ERR_INVALID_ARGUMENT: net.set_partition([0'u32])
    net.set_online(3, false)
    net.close()
    net.close()
    expect_status ZEN_ERR_INVALID_HANDLE: net.step(now)

suite "raw":
  scenario "raw.nim declares every function of the headers":
    const root = currentSourcePath().parentDir / ".." / ".." / ".."
    const headers = staticRead(root / "include" / "zen_crdt.h") & staticRead(root / "include" / "zen_crdt_sim.h")
    const raw_src = staticRead(root / "bindings" / "nim" / "src" / "zen_crdt" / "raw.nim")
    var missing: seq[string]
    var names = 0
    for name in headers.findAll(re"\bzen_[a-z0-9_]+(?=\()"):
      inc names
      if ("proc " & name & "*(") notin raw_src: missing.add name
    check names >= 57  # the scan itself found the headers' functions
    check missing.len == 0
    if missing.len > 0: echo "raw.nim lacks: ", missing.toHashSet

  scenario "versions agree":
    check zen_version() shr 16 == uint32(ZEN_VERSION_MAJOR)

echo tally.passed, " passed, ", tally.failed, " failed"
