## What the Nim binding adds to a write: `pos.value = v` beside the C call it wraps,
## `zen_value_set_vec3`, on the same value, in interleaved samples, in thread CPU time
## per call (the machine is shared: the difference and the ratio are the figures).
##
##   nim c -d:release -r bench/bench_set.nim [calls per sample] [samples]
import std/[algorithm, os, strutils, strformat]
import zen_crdt, zen_crdt/raw

type
  Vector3 = object
    x, y, z: float32
  Timespec {.importc: "struct timespec", header: "<time.h>".} = object
    tv_sec: clong
    tv_nsec: clong

var CLOCK_THREAD_CPUTIME_ID {.importc, header: "<time.h>".}: cint
proc clock_gettime(clk: cint, ts: var Timespec): cint {.importc, header: "<time.h>".}

proc thread_cpu_ns(): float =
  var ts: Timespec
  discard clock_gettime(CLOCK_THREAD_CPUTIME_ID, ts)
  float(ts.tv_sec) * 1e9 + float(ts.tv_nsec)

proc median(v: seq[float]): float = v.sorted[v.len div 2]

proc main() =
  let calls = if paramCount() >= 1: parseInt(paramStr(1)) else: 200_000
  let samples = if paramCount() >= 2: parseInt(paramStr(2)) else: 21
  let ctx = CrdtContext.init(1)
  var pos = CrdtZenValue[Vector3].init(ctx, "unit/7/pos")
  let c = ctx.handle
  var raw_handle: zen_value_t
  doAssert zen_value_open(c, "unit/7/pos", 10, addr raw_handle) == ZEN_OK
  var c_ns, nim_ns: seq[float]
  var failures = 0
  for s in 1..samples:
    ctx.tick(uint64(s) * 16)  # a tick between samples keeps the pending set as in a game
    let t0 = thread_cpu_ns()
    for i in 0 ..< calls:
      failures += int(zen_value_set_vec3(c, raw_handle, zen_vec3_t(x: cfloat(i), y: 1, z: 2)) != ZEN_OK)
    let t1 = thread_cpu_ns()
    for i in 0 ..< calls:
      pos.value = Vector3(x: float32(i), y: 1, z: 2)
    let t2 = thread_cpu_ns()
    c_ns.add (t1 - t0) / float(calls)
    nim_ns.add (t2 - t1) / float(calls)
  doAssert failures == 0
  let (mc, mn) = (median(c_ns), median(nim_ns))
  echo &"zen_crdt (Nim) write cost: median of {samples} interleaved samples of {calls} calls, thread CPU ns per call"
  echo "| call                         | ns/call |"
  echo "|------------------------------|---------|"
  echo &"| zen_value_set_vec3 (C)       | {mc:7.1f} |"
  echo &"| pos.value = v (Nim)          | {mn:7.1f} |"
  echo &"| binding - C                  | {mn - mc:7.1f} |"
  echo &"| binding / C                  | {mn / mc:7.3f} |"

main()
