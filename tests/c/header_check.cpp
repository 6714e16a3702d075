// The header compiles alone, twice included, as strict C++17.
#include "zen_crdt.h"
#include "zen_crdt.h"
int zen_header_check_cpp() { return static_cast<int>(ZEN_OK) + static_cast<int>(sizeof(zen_change_t)); }
