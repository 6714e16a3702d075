# Package

version       = "1.0.0"
author        = "zen-crdt"
description   = "Dual-mode (FastLocal / WaitForSync) CRDT values for games, with model_citizen's API, over the zen-crdt C library"
license       = "MIT OR Apache-2.0"
srcDir        = "src"

# Dependencies

requires "nim >= 1.6.10"

task test, "build the library and run the tests and examples (both memory managers)":
  exec "bash run_tests.sh"
