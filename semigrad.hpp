// semigrad: everything, for programs that want one include. Library code includes what it uses.
#pragma once

// floor 1: numbers
#include "tensor/atomic_file.hpp"
#include "tensor/conv2d.hpp"
#include "tensor/dropout.hpp"
#include "tensor/error.hpp"
#include "tensor/gemm.hpp"
#include "tensor/parallel.hpp"
#include "tensor/pool2d.hpp"
#include "tensor/random.hpp"
#include "tensor/tensor.hpp"
// floor 2: gradients, data, metrics
#include "autograd/functions.hpp"
#include "autograd/gradcheck.hpp"
#include "autograd/var.hpp"
#include "data/batcher.hpp"
#include "data/idx.hpp"
#include "metrics/retrieval.hpp"
// floor 3: modules, losses, data-parallel training
#include "distributed/agreement.hpp"
#include "distributed/communicator.hpp"
#include "distributed/data_parallel.hpp"
#include "losses/losses.hpp"
#include "nn/checkpoint.hpp"
#include "nn/init.hpp"
#include "nn/layers.hpp"
#include "nn/module.hpp"
#include "nn/optimizer.hpp"
#include "nn/sequential.hpp"
