// Model::load: file -> hyperparameters and vocabulary -> device -> weights. The GGUF mapping is
// closed once the weights are on the device.
#include "models/model.hpp"

#include "common/error.hpp"
#include "gguf/gguf.hpp"
#include "models/weights.hpp"

namespace moevk::models {

struct Model::Impl {
  std::string path;
  HParams hp;
  text::VocabData vocab;
  std::shared_ptr<vk::Context> ctx;
  std::unique_ptr<Weights> weights;
};

Model::Model() : impl_(std::make_unique<Impl>()) {}

Model::~Model() {
  // Weights hold buffers of the context: free them before the context can go.
  if (impl_) impl_->weights.reset();
}

std::unique_ptr<Model> Model::load(const std::string& path, const LoadOptions& options) {
  std::unique_ptr<Model> m(new Model());
  Impl& d = *m->impl_;
  d.path = path;
  if (options.progress && !options.progress(0.0f, "reading file"))
    fail(MOEVK_ERROR_CANCELLED, "model load cancelled");
  std::unique_ptr<gguf::File> file = gguf::File::open(path);
  d.hp = model::read_hparams(*file);
  d.vocab = text::read_vocab(*file);
  if (!d.vocab.tokens.empty() && d.vocab.tokens.size() > d.hp.n_vocab)
    fail(MOEVK_ERROR_INVALID_FILE, path + ": the vocabulary has " + std::to_string(d.vocab.tokens.size()) +
                                       " tokens but the model's output has " + std::to_string(d.hp.n_vocab) + " rows");
  if (options.progress && !options.progress(0.0f, "opening device"))
    fail(MOEVK_ERROR_CANCELLED, "model load cancelled");
  d.ctx = vk::Context::create(options.device);
  d.weights = Weights::load(*d.ctx, *file, d.hp, options.progress);
  return m;
}

const HParams& Model::hparams() const { return impl_->hp; }
const text::VocabData& Model::vocab() const { return impl_->vocab; }
vk::Context& Model::context() const { return *impl_->ctx; }
std::shared_ptr<vk::Context> Model::shared_context() const { return impl_->ctx; }
const Weights& Model::weights() const { return *impl_->weights; }
const std::string& Model::path() const { return impl_->path; }
uint64_t Model::weight_bytes() const { return impl_->weights->bytes(); }

}  // namespace moevk::models
