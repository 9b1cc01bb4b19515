// Checkpoints: everything a training run needs to resume bit-exactly, in one binary file.
//
// A checkpoint holds every model parameter, the optimiser's state (its slots and step counter),
// the state of every generator the model owns (Dropout), and the caller's integer metadata
// ("epoch" -> 2, "seed" -> 42). Restoring all of it into a freshly built model and optimiser and
// continuing gives the same numbers, bit for bit, as never having stopped (same thread count).
//
// File format, version 1. Integers are little-endian, floats IEEE-754 binary32 little-endian; a
// string is a u32 byte count followed by the bytes (UTF-8, no terminator).
//
//   magic       6 bytes   "SGCKPT"
//   version     u32       1
//   optimizer   string    Optimizer::type(): "Adam", "SGD"
//   iterations  i64       Optimizer::iterations()
//   n_tensors   u32
//     name      string    a parameter name ("conv2d/kernel") or an optimiser slot,
//                         "optimizer/<slot>/<parameter>" ("optimizer/m/conv2d/kernel")
//     rank      u32
//     dims      u64 x rank
//     values    f32 x prod(dims), row-major
//   n_rngs      u32
//     name      string    "dropout/rng"
//     state     u64       Rng::State::state
//     inc       u64       Rng::State::inc
//   n_metadata  u32
//     key       string
//     value     i64
//   crc32       u32       zlib's crc32 of every byte before it
//
// Saving writes a temporary file beside `path`, syncs it and renames it over `path`
// (tensor/atomic_file.hpp), so a crash or a failed write leaves the previous checkpoint intact.
// Loading parses and checks the whole file (magic, version, truncation, checksum) and matches it
// against the model and optimiser (optimiser type, every name, every shape, nothing missing and
// nothing extra) before it changes anything: on any error the model and optimiser are untouched.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "nn/optimizer.hpp"
#include "nn/sequential.hpp"

namespace semigrad::nn {

inline constexpr std::uint32_t kCheckpointVersion = 1;

// Throws Error if the model is not built, IoError if the file cannot be written.
void save_checkpoint(const std::string& path, Sequential& model, const Optimizer& opt,
                     const std::map<std::string, std::int64_t>& metadata);

// Restores model parameters, optimiser state and generators from `path` and returns the
// metadata. IoError if the file cannot be read; FormatError (naming the file, and the tensor and
// both shapes where relevant) if it is malformed or does not match the model / optimiser;
// ValueError if `opt` does not hold the model's own parameter tensors.
std::map<std::string, std::int64_t> load_checkpoint(const std::string& path, Sequential& model,
                                                    Optimizer& opt);

}  // namespace semigrad::nn
