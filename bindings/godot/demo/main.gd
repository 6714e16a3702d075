# The zen-crdt demo: run one server and one or more clients on this machine.
#   godot --path bindings/godot/demo -- --server
#   godot --path bindings/godot/demo -- --client
# Each player moves its own square (FastLocal: shown at once, corrected if needed), all
# of them hit a shared boss whose health is averaged when hits collide (TakeAverage:
# the losing side sees a correction), and the team score is WaitForSync (shown only
# once every player has it).
extends Node

const PORT := 7777

var zen: ZenCrdtContext
var my_square: ColorRect
var squares := {}
var t := 0.0

func _ready() -> void:
	var args := OS.get_cmdline_user_args()
	var peer := ENetMultiplayerPeer.new()
	if "--server" in args:
		peer.create_server(PORT)
	else:
		peer.create_client("127.0.0.1", PORT)
	multiplayer.multiplayer_peer = peer
	zen = ZenCrdtContext.new()       # peer_id 0: multiplayer.get_unique_id()
	zen.value_changed.connect(_on_value_changed)
	zen.value_created.connect(_on_value_created)
	add_child(zen)                   # starts now on the server, on connected_to_server on a client
	multiplayer.connected_to_server.connect(_create_values)
	if "--server" in args:
		_create_values()

func _create_values() -> void:
	var me := multiplayer.get_unique_id()
	zen.create_value("player/%d/pos" % me, TYPE_VECTOR2, ZenCrdtContext.MODE_FAST_LOCAL, ZenCrdtContext.POLICY_LAST_WRITER_WINS)
	zen.create_value("boss/hp", TYPE_FLOAT, ZenCrdtContext.MODE_FAST_LOCAL, ZenCrdtContext.POLICY_TAKE_AVERAGE)
	zen.create_value("team/score", TYPE_INT, ZenCrdtContext.MODE_WAIT_FOR_SYNC, ZenCrdtContext.POLICY_MAX)
	my_square = _square("player/%d/pos" % me, Color.GREEN)

func _square(id: String, color: Color) -> ColorRect:
	var r := ColorRect.new()
	r.color = color
	r.size = Vector2(24, 24)
	add_child(r)
	squares[id] = r
	return r

func _physics_process(delta: float) -> void:
	if my_square == null:
		return
	t += delta
	var me := multiplayer.get_unique_id()
	var pos := Vector2(200 + 150 * cos(t + me), 200 + 150 * sin(t + me))
	zen.set_value("player/%d/pos" % me, pos)
	if int(t * 2) != int((t - delta) * 2):       # every half second, everyone hits the boss
		var hp = zen.get_value("boss/hp")
		zen.set_value("boss/hp", (100.0 if hp == null or hp <= 0.0 else hp) - 5.0)
	if multiplayer.is_server() and int(t) != int(t - delta):
		zen.set_value("team/score", int(t))

func _on_value_created(id: String) -> void:
	if id.begins_with("player/") and not squares.has(id):
		_square(id, Color.ORANGE)

func _on_value_changed(id: String, value, _old, state: int, is_correction: bool, _origin: int, _is_initial: bool) -> void:
	if squares.has(id) and value is Vector2:
		squares[id].position = value
	elif id == "boss/hp" and is_correction:
		print("boss hp corrected to %.1f (a concurrent hit was averaged in)" % value)
	elif id == "team/score":
		print("score %d (state %d: acknowledged by every player)" % [value, state])
