// A model on the device: hyperparameters, vocabulary, and weights uploaded from a GGUF file.
// The forward pass of each architecture lives in its own file (models/llama.cpp for
// Mixtral-style llama, models/qwen2moe.cpp, models/qwen3moe.cpp) behind models::Forward.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "models/hparams.hpp"
#include "text/vocab.hpp"
#include "vk/context.hpp"

namespace moevk::gguf {
class File;
}

namespace moevk::models {

// hparams.hpp lives in namespace moevk::model; the model room uses both names.
using model::HParams;

// Progress of a load in [0,1] with a stage name; return false to cancel (CANCELLED).
using Progress = std::function<bool(float fraction, const char* stage)>;

struct LoadOptions {
  vk::ContextOptions device;
  Progress progress;
};

class Weights;  // device buffers of every tensor (models/weights.hpp)

class Model {
 public:
  // Reads and validates the file, chooses the device, uploads the weights. Throws moevk::Error
  // naming what was wrong (INVALID_FILE, MISSING_TENSOR, UNSUPPORTED, OUT_OF_DEVICE_MEMORY, ...).
  static std::unique_ptr<Model> load(const std::string& path, const LoadOptions& options);
  ~Model();

  const HParams& hparams() const;
  const text::VocabData& vocab() const;
  vk::Context& context() const;
  std::shared_ptr<vk::Context> shared_context() const;
  const Weights& weights() const;
  const std::string& path() const;
  uint64_t weight_bytes() const;  // bytes held on the device for weights

 private:
  Model();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace moevk::models
