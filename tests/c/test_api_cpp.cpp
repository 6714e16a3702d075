// The C tests compiled as C++17: the header and the C API must work from C++ as is.
#include "test_api.c"
