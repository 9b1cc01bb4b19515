// semigrad: everything, for programs that want one include. Library code includes what it uses.
#pragma once

#include "tensor/error.hpp"
#include "tensor/gemm.hpp"
#include "tensor/parallel.hpp"
#include "tensor/random.hpp"
#include "tensor/tensor.hpp"
#include "autograd/functions.hpp"
#include "autograd/var.hpp"
