// The misuses of misuse.c, compiled as C++17.
#include "misuse.c"
