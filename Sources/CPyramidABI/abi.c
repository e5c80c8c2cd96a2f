// The C interface's declarations (include/pyramid.h, include/pyramid_binding.h); PyramidC implements them in Swift.
#include "pyramid.h"
#include "pyramid_binding.h"
