## Enu-style play through the binding: three players' units move FastLocal every frame,
## a shared team score is WaitForSync, the game reacts in `changes:` callbacks and uses
## `pause` so a node's own writes do not echo back to it; `boop` runs once per frame.
## The contexts are linked in process with `subscribe`, as model_citizen does.
import zen_crdt

type Vector3 = object
  x, y, z: float32

type Player = ref object
  ctx: CrdtContext
  unit: CrdtZenValue[Vector3]
  score: CrdtZenValue[int]
  unit_zid: ZID
  moves_seen, scores_seen: int

proc watch(p: Player, players: seq[Player]) =
  ## The game's reactions for one player (a proc of its own, so each player's callbacks
  ## capture that player: closures made in one loop would share their variables).
  # Watch the other players' units as they appear and move.
  for q in players:
    if q == p: continue
    let theirs = CrdtZenValue[Vector3].init(p.ctx, q.unit.id)
    discard theirs.changes:
      if added: inc p.moves_seen
  # Our own unit: its callback is paused while we write it (no echo of our own moves).
  p.unit_zid = p.unit.changes:
    if added and change.is_correction: echo "player ", p.ctx.peer_id, ": unit corrected"
  discard p.score.changes:
    if added and change.sync_state == Converged:
      inc p.scores_seen
      echo "player ", p.ctx.peer_id, " shows the score ", change.item, " (acknowledged by all)"

proc main() =
  var players: seq[Player]
  for id in 1'u64..3:
    let ctx = CrdtContext.init(id)
    let p = Player(ctx: ctx,
                   unit: CrdtZenValue[Vector3].init(ctx, "unit/" & $id & "/pos"),
                   score: CrdtZenValue[int].init(ctx, "team/score", mode = WaitForSync, policy = Max))
    players.add p
  for i in 0 ..< players.len:
    for j in i + 1 ..< players.len: players[i].ctx.subscribe(players[j].ctx)
  for p in players: watch(p, players)
  var now = 0'u64
  for frame in 1..120:
    now += 16
    for i, p in players:
      p.unit.pause p.unit_zid:
        p.unit.value = Vector3(x: float32(frame), y: float32(i), z: 0)
      if frame == 60 and i == 0: p.score.value = 5
    for p in players: p.ctx.boop(now)
  for p in players:
    echo "player ", p.ctx.peer_id, ": saw ", p.moves_seen, " moves of others, score ", p.score.value
    doAssert p.score.value == 5 and p.scores_seen == 1 and p.moves_seen > 100

main()
