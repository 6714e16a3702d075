// The headers alone, each included twice, as strict C++17.
#include "zen_crdt.h"
#include "zen_crdt.h"
#include "zen_crdt_sim.h"
#include "zen_crdt_sim.h"
int zen_header_check_cpp();
int zen_header_check_cpp() { return ZEN_OK + static_cast<int>(sizeof(zen_change_t) + sizeof(zen_link_t)); }
