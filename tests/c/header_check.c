/* The header compiles alone, twice included, as strict C99. */
#include "zen_crdt.h"
#include "zen_crdt.h"
int zen_header_check_c(void) { return ZEN_OK + (int)sizeof(zen_change_t); }
