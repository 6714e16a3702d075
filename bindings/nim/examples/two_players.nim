## The C quickstart in Nim: two players in one process, a position written on one and
## read on the other, the bytes carried by hand (a game's transport goes there).
import zen_crdt

type Vector3 = object
  x, y, z: float32

let a = CrdtContext.init(peer_id = 1)
let b = CrdtContext.init(peer_id = 2)
a.add_peer(2)       # your transport connected them
b.add_peer(1)
var pos = CrdtZenValue[Vector3].init(a, id = "unit/7/pos")   # FastLocal, LastWriterWins
pos.value = Vector3(x: 1, y: 2, z: 3)                        # shows at once on a
for t in 1'u64..10:
  a.tick(t * 16)
  b.tick(t * 16)
  for msg in a.outbound: b.receive_from(1, msg.bytes)      # it came from peer 1
  for msg in b.outbound: a.receive_from(2, msg.bytes)
let on_b = CrdtZenValue[Vector3].init(b, id = "unit/7/pos")  # the same id: the same value
echo "b sees ", on_b.value
doAssert on_b.value == Vector3(x: 1, y: 2, z: 3)
