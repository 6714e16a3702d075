# GDScript tests of the ZenCrdtContext node, two players in one process joined by the
# manual transport (the outbound signal into receive), ticked by hand.
#   godot --headless --path bindings/godot/demo -s res://tests/run.gd
# Exits 0 when every check passed. NOT RUN in this project's CI: no Godot 4 engine can
# be installed there (the extension is built and checked without it).
extends SceneTree

var failures := 0
var changed := []
var corrections := 0
var initial := []
var touched := []

func check(ok: bool, what: String) -> void:
	if not ok:
		failures += 1
		printerr("FAILED: ", what)

func make(id: int) -> ZenCrdtContext:
	var z := ZenCrdtContext.new()
	z.use_scene_multiplayer = false
	z.peer_id = id
	root.add_child(z)
	check(z.start(), "start peer %d" % id)
	return z

func _on_b_changed(id: String, value, _old, _state: int, is_correction: bool, _origin: int, is_initial: bool) -> void:
	changed.append([id, value])
	if is_initial:
		initial.append(id)
	if is_correction:
		corrections += 1

func _on_a_changed(_id: String, _value, _old, _state: int, is_correction: bool, _origin: int, _is_initial: bool) -> void:
	if is_correction:
		corrections += 1

func _initialize() -> void:
	var a := make(1)
	var b := make(2)
	a.outbound.connect(func(_to, bytes): b.receive(1, bytes))
	b.outbound.connect(func(_to, bytes): a.receive(2, bytes))
	a.add_peer(2)
	b.add_peer(1)
	b.value_changed.connect(_on_b_changed)
	a.value_changed.connect(_on_a_changed)
	a.value_touched.connect(func(id, _value, origin): touched.append([id, origin]))

	check(a.create_value("pos", TYPE_VECTOR3, ZenCrdtContext.MODE_FAST_LOCAL, ZenCrdtContext.POLICY_LAST_WRITER_WINS), "create pos")
	check(a.set_value("pos", Vector3(1, 2, 3)), "set pos")
	check(a.get_value("pos") == Vector3(1, 2, 3), "FastLocal shows at once")
	check(not a.set_value("pos", "not a vector"), "a wrong Variant is refused")
	check(not a.create_value("bad", TYPE_DICTIONARY, 0, 0), "Dictionary is refused")
	check(a.create_value("rot", TYPE_QUATERNION, 0, 0), "create rot")
	check(a.set_value("rot", Quaternion(0, 0.7071, 0, 0.7071)), "set rot")
	check(a.create_value("score", TYPE_INT, ZenCrdtContext.MODE_WAIT_FOR_SYNC, ZenCrdtContext.POLICY_MAX), "create score")
	check(a.set_value("score", 10), "set score")
	check(a.get_value("score") == 0, "WaitForSync holds the acknowledged value")
	var now := 0
	for i in 20:
		now += 16
		a.tick(now)
		b.tick(now)
	check(b.get_value("pos") == Vector3(1, 2, 3), "b sees pos")
	check(b.get_value("rot") is Quaternion, "a quaternion stays a Quaternion")
	check(a.get_value("score") == 10 and a.get_state("score") == ZenCrdtContext.STATE_CONVERGED, "score converged")
	check(changed.any(func(c): return c[0] == "pos" and c[1] == Vector3(1, 2, 3)), "value_changed on b")
	check(initial.has("pos"), "a value created by a is initial on b")

	# Touch: b re-announces pos, a hears it from b. A local-only value never reaches b.
	check(b.touch_value("pos"), "touch pos")
	check(a.create_local_value("menu", TYPE_STRING, 0, 0), "create a local-only value")
	check(a.set_value("menu", "inventory") and a.is_local_only("menu"), "local-only")
	check(not a.create_value("menu", TYPE_STRING, 0, 0), "opening it as shared is refused")
	for i in 20:
		now += 16
		a.tick(now)
		b.tick(now)
	check(touched.has(["pos", 2]), "a got value_touched from b")
	check(b.get_value("menu") == null, "b never heard of menu")
	check(not a.touch_value("never_created"), "touching nothing is refused")

	# An owner-only value: only a writes it until it gives it to b.
	var owners := []
	b.owner_changed.connect(func(id, owner): owners.append([id, owner]))
	check(a.create_owned_value("ball", TYPE_INT, 0, 0, 1), "create an owned value")
	check(a.set_value("ball", 5), "the owner writes")
	for i in 20:
		now += 16
		a.tick(now)
		b.tick(now)
	check(b.get_value_owner("ball") == 1 and not b.set_value("ball", 6), "b may not write a's ball")
	check(a.transfer_value("ball", 2) and not a.set_value("ball", 7), "a gives it away")
	for i in 20:
		now += 16
		a.tick(now)
		b.tick(now)
	check(owners.has(["ball", 2]), "b got owner_changed")
	check(b.set_value("ball", 8), "b writes it now")

	# A table keyed by int and String: entries as signals, a Dictionary copy. (2.2)
	var entries := []
	b.table_entry_added.connect(func(t, key, value, is_initial, origin): entries.append(["added", t, key, value]))
	b.table_entry_changed.connect(func(t, key, value, old_value, state, is_correction, origin): entries.append(["changed", t, key, value]))
	b.table_entry_removed.connect(func(t, key, old_value, origin): entries.append(["removed", t, key, old_value]))
	check(a.open_table("blocks", TYPE_STRING, 0, 0) and b.open_table("blocks", TYPE_STRING, 0, 0), "open tables")
	check(a.table_set("blocks", 7, "stone") and a.table_set("blocks", "door", "oak"), "table_set")
	check(a.table_get("blocks", 7) == "stone" and a.table_size("blocks") == 2, "a reads its entries at once")
	check(not a.table_set("blocks", 1.5, "x"), "a float key is refused")
	for i in 20:
		now += 16
		a.tick(now)
		b.tick(now)
	check(b.table_to_dictionary("blocks") == {7: "stone", "door": "oak"}, "b has both entries")
	check(a.table_state("blocks") == ZenCrdtContext.STATE_CONVERGED, "the table converged")
	check(a.table_set("blocks", 7, "iron") and a.table_erase("blocks", "door"), "update and erase")
	for i in 20:
		now += 16
		a.tick(now)
		b.tick(now)
	check(entries.has(["added", "blocks", 7, "stone"]) and entries.has(["changed", "blocks", 7, "iron"]), "entry signals")
	check(entries.has(["removed", "blocks", "door", "oak"]) and not b.table_has("blocks", "door"), "erase reached b")

	# A set of flags: an add wins over a concurrent removal. (2.2)
	var members := []
	b.set_member_added.connect(func(s, member, is_initial, origin): members.append(["added", s, member]))
	check(a.open_set("flags", TYPE_STRING, 0) and b.open_set("flags", TYPE_STRING, 0), "open sets")
	check(a.set_add("flags", "door_open") and a.set_has("flags", "door_open"), "set_add")
	for i in 20:
		now += 16
		a.tick(now)
		b.tick(now)
	check(b.set_to_array("flags") == ["door_open"] and members.has(["added", "flags", "door_open"]), "b has the flag")
	check(b.set_remove("flags", "door_open") and a.set_add("flags", "door_open"), "a concurrent remove and add")
	for i in 30:
		now += 16
		a.tick(now)
		b.tick(now)
	check(a.set_has("flags", "door_open") and b.set_has("flags", "door_open") and b.set_size("flags") == 1, "the add won")

	# A sequence: items in one order, signals with indexes. (2.2)
	var seq_added := []
	b.seq_item_added.connect(func(q, index, item, is_initial, origin): seq_added.append([q, index, item]))
	check(a.open_seq("units", TYPE_INT, 0) and b.open_seq("units", TYPE_INT, 0), "open sequences")
	check(a.seq_push("units", 10) and a.seq_push("units", 30) and a.seq_insert("units", 1, 20), "push and insert")
	check(not a.seq_insert("units", 9, 1), "an index past the end is refused")
	for i in 20:
		now += 16
		a.tick(now)
		b.tick(now)
	check(b.seq_to_array("units") == [10, 20, 30] and seq_added.has(["units", 1, 20]), "b has the items in order")
	check(a.seq_move("units", 0, 2) and a.seq_remove("units", 0) and a.seq_set("units", 0, 31), "move, remove, set")
	for i in 20:
		now += 16
		a.tick(now)
		b.tick(now)
	check(b.seq_to_array("units") == [31, 10] and b.seq_get("units", 1) == 10 and b.seq_size("units") == 2, "b follows")

	# Touches: the same value, act again. (2.2)
	var touches := []
	b.table_entry_touched.connect(func(t, key, value, origin): touches.append(["table", key, value]))
	b.set_member_touched.connect(func(s, member, origin): touches.append(["set", member]))
	b.seq_item_touched.connect(func(q, index, item, origin): touches.append(["seq", index, item]))
	check(a.table_touch("blocks", 7, "iron") and a.set_touch("flags", "door_open") and a.seq_touch("units", 0), "touches")
	check(not a.seq_touch("units", 9), "no item to touch")
	for i in 20:
		now += 16
		a.tick(now)
		b.tick(now)
	check(touches.has(["table", 7, "iron"]) and touches.has(["set", "door_open"]) and touches.has(["seq", 0, 31]), "b heard the touches")

	# Owner-only collections: b may not write a's; a transfer reaches both. (2.2)
	var col_owners := []
	b.collection_owner_changed.connect(func(c, kind, owner): col_owners.append([c, kind, owner]))
	var col_rejected := []
	b.collection_write_rejected.connect(func(c, kind, key, value, rejected_value, owner): col_rejected.append([c, kind, key]))
	check(a.open_owned_table("army", TYPE_INT, 0, 0, 1) and b.open_owned_table("army", TYPE_INT, 0, 0, 1), "open owned tables")
	check(a.open_owned_set("perks", TYPE_STRING, 0, 1) and a.open_owned_seq("queue", TYPE_INT, 0, 1), "open an owned set and sequence")
	check(b.open_owned_set("perks", TYPE_STRING, 0, 1) and b.open_owned_seq("queue", TYPE_INT, 0, 1), "b opens them too")
	check(a.table_set("army", 1, 100) and a.set_add("perks", "speed") and a.seq_push("queue", 5), "a writes its collections")
	for i in 20:
		now += 16
		a.tick(now)
		b.tick(now)
	check(b.get_table_owner("army") == 1 and b.get_set_owner("perks") == 1 and b.get_seq_owner("queue") == 1, "b knows the owner")
	check(not b.table_set("army", 2, 5) and not b.set_add("perks", "x") and not b.seq_push("queue", 1), "b may not write them")
	check(not b.transfer_table("army", 2), "b may not give a's table away")
	check(a.transfer_table("army", 2) and a.transfer_set("perks", 2) and a.transfer_seq("queue", 2), "a gives them to b")
	for i in 20:
		now += 16
		a.tick(now)
		b.tick(now)
	check(col_owners.has(["army", "table", 2]) and col_owners.has(["queue", "sequence", 2]), "b got collection_owner_changed")
	check(b.table_set("army", 2, 5) and not a.table_set("army", 3, 5) and col_rejected.is_empty(), "b writes now, a may not")

	check(a.create_value("flag", TYPE_INT, 0, 0), "create flag")
	for i in 10:
		now += 16
		a.tick(now)
		b.tick(now)
	check(a.set_value("flag", 1) and b.set_value("flag", 2), "concurrent writes")
	for i in 20:
		now += 16
		a.tick(now)
		b.tick(now)
	check(a.get_value("flag") == b.get_value("flag"), "both agree")
	check(corrections == 1, "exactly one correction (got %d)" % corrections)
	check(a.get_metrics()["peers"] == 1, "metrics")

	# Two more players on the node's own ENet link (127.0.0.1, real time).
	var host := make(3)
	var guest := make(4)
	var port := host.enet_listen("127.0.0.1:0")
	check(port > 0, "enet_listen gives the port")
	check(guest.enet_connect("127.0.0.1:%d" % port), "enet_connect")
	check(not guest.enet_connect("localhost:1"), "a name is refused")
	check(host.create_value("door", TYPE_BOOL, ZenCrdtContext.MODE_WAIT_FOR_SYNC, 0), "create door")
	check(host.set_value("door", true), "set door")
	var start := Time.get_ticks_msec()
	while Time.get_ticks_msec() - start < 10000 and not (guest.get_value("door") == true and host.get_state("door") == ZenCrdtContext.STATE_CONVERGED):
		host.tick(Time.get_ticks_msec())
		guest.tick(Time.get_ticks_msec())
		OS.delay_msec(1)
	check(guest.get_value("door") == true, "the door opened over ENet")
	check(guest.get_link_stats()["received"] > 0, "link stats")
	guest.close_link()
	check(guest.get_metrics()["peers"] == 0, "closing the link drops its members")
	# A room and token: a guest showing the wrong token is refused by the host.
	var locked := ZenCrdtContext.new()
	locked.use_scene_multiplayer = false
	locked.peer_id = 8
	locked.enet_room = "arena"
	locked.enet_token = "secret"
	root.add_child(locked)
	var locked_port := locked.enet_listen("127.0.0.1:0")
	var wrong := ZenCrdtContext.new()
	wrong.use_scene_multiplayer = false
	wrong.peer_id = 9
	wrong.enet_room = "arena"
	wrong.enet_token = "guess"
	root.add_child(wrong)
	check(wrong.enet_connect("127.0.0.1:%d" % locked_port), "connect with a wrong token")
	start = Time.get_ticks_msec()
	while Time.get_ticks_msec() - start < 2000:
		locked.tick(Time.get_ticks_msec())
		wrong.tick(Time.get_ticks_msec())
		OS.delay_msec(1)
	check(locked.get_metrics()["peers"] == 0, "the wrong token was refused")

	# Save and load: a node started from the host's save holds the door, and a running
	# node refuses to load over its session.
	var saved := host.save_state()
	check(saved.size() > 16, "save_state gives bytes")
	check(host.save_to_file("user://zen_test_save.zen"), "save_to_file")
	var restored := ZenCrdtContext.new()
	restored.use_scene_multiplayer = false
	restored.peer_id = 5
	check(restored.load_state(saved), "load_state starts the session from the save")
	root.add_child(restored)
	check(restored.get_value("door") == true, "the loaded door is open")
	check(not restored.load_state(saved), "a running session refuses a load")
	var from_file := ZenCrdtContext.new()
	from_file.use_scene_multiplayer = false
	from_file.peer_id = 6
	check(from_file.load_from_file("user://zen_test_save.zen"), "load_from_file")
	check(from_file.get_value("door") == true, "the door from the file")
	var empty := ZenCrdtContext.new()
	empty.use_scene_multiplayer = false
	empty.peer_id = 7
	check(not empty.load_state(PackedByteArray([1, 2, 3])), "a corrupt save is refused")
	print("%s: %d failed" % ["ok" if failures == 0 else "FAILED", failures])
	quit(1 if failures > 0 else 0)
