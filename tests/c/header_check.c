/* The headers alone, each included twice, as strict C99. */
#include "zen_crdt.h"
#include "zen_crdt.h"
#include "zen_crdt_sim.h"
#include "zen_crdt_sim.h"
int zen_header_check_c(void);
int zen_header_check_c(void) { return ZEN_OK + (int)sizeof(zen_change_t) + (int)sizeof(zen_link_t); }
