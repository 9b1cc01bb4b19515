// Checkpoints: everything a training run needs to resume bit-exactly, in one binary file.
//
// A checkpoint holds every model parameter, the optimiser's state (its slots and step counter),
// the state of every generator the model owns (Dropout), and the caller's metadata: named
// integers ("epoch" -> 2, "seed" -> 42) and doubles ("epoch_loss_0" -> 0.8155...), each stored
// exactly (a double's 64 bits, not a decimal rendering). Restoring all of it into a freshly built model and optimiser and
// continuing gives the same numbers, bit for bit, as never having stopped (same thread count).
//
// File format, version 2. Integers are little-endian, floats IEEE-754 binary32 little-endian; a
// string is a u32 byte count followed by the bytes (UTF-8, no terminator).
//
//   magic       6 bytes   "SGCKPT"
//   version     u32       2 (version 1, whose metadata held integers only, is refused by name)
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
//     type      u8        0: integer, 1: double
//     value     i64 | f64 (IEEE-754 binary64, little-endian)
//   crc32       u32       zlib's crc32 of every byte before it
//
// Saving writes a temporary file beside `path`, syncs it and renames it over `path`
// (tensor/atomic_file.hpp), so a crash or a failed write leaves the previous checkpoint intact.
// Loading parses and checks the whole file (magic, version, truncation, checksum) and matches it
// against the model and optimiser (optimiser type, every name, every shape, nothing missing and
// nothing extra, every value finite) before it changes anything: on any error the model and
// optimiser are untouched. Names read from a file are printed with control and non-ASCII bytes
// escaped (\xNN), so a corrupt name cannot write to the user's terminal.
//
// Non-finite values are refused both ways: a NaN weight is never a state worth resuming (the
// training that produced it has diverged), so save_checkpoint will not write one and
// load_checkpoint will not restore one, and the previous good checkpoint survives.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <variant>

#include "nn/optimizer.hpp"
#include "nn/sequential.hpp"

namespace semigrad::nn {

inline constexpr std::uint32_t kCheckpointVersion = 2;

// One metadata value: `{"epoch", 2}` stores an integer, `{"loss", 0.5}` a double.
using MetaValue = std::variant<std::int64_t, double>;
using Metadata = std::map<std::string, MetaValue>;

// Throws Error if the model is not built, ValueError (naming the tensor) if a parameter or
// optimiser slot holds NaN or infinity, IoError if the file cannot be written.
void save_checkpoint(const std::string& path, Sequential& model, const Optimizer& opt,
                     const Metadata& metadata);

// Restores model parameters, optimiser state and generators from `path` and returns the
// metadata. IoError if the file cannot be read; FormatError (naming the file, and the tensor and
// both shapes where relevant) if it is malformed or does not match the model / optimiser;
// ValueError if `opt` does not hold the model's own parameter tensors.
Metadata load_checkpoint(const std::string& path, Sequential& model, Optimizer& opt);

// True when `path` is a regular file that starts with the checkpoint magic: a file a program may
// overwrite with a new checkpoint without destroying something else.
bool looks_like_checkpoint(const std::string& path);

}  // namespace semigrad::nn
