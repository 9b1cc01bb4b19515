// losses/: everything a training program needs from this floor, in one include.
#pragma once

#include "losses/cross_entropy.hpp"
#include "losses/pairwise_distance.hpp"
#include "losses/triplet.hpp"
