// The C interface's declarations (include/pyramid.h); PyramidC implements them in Swift.
#include "pyramid.h"
