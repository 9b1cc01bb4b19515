// The single door through which semigrad includes xtensor.
//
// g++ 12 with -Werror reports -Warray-bounds / -Wmaybe-uninitialized false positives from inside
// xtensor's headers. We silence them here, for xtensor only, instead of weakening warnings for
// the whole project. XTENSOR_USE_XSIMD is deliberately not defined: it changes allocator types
// and must be identical in every translation unit.
#pragma once

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Warray-bounds"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include <xtensor/xarray.hpp>  // storage only: views and math would cost every file's compile
#pragma GCC diagnostic pop
