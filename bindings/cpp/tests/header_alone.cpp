// The header alone, included twice, with nothing before it.
#include <zen_crdt.hpp>
#include <zen_crdt.hpp>

zen::Result<zen::Context> header_alone_compiles() { return zen::Context::create(1); }
