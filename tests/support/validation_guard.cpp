// Fails any test program in which the Vulkan validation layer reported something that no test
// deliberately provoked (and cleared): every GPU test, whatever fixture it uses, runs under this.
#include <gtest/gtest.h>

#include "vk/context.hpp"

namespace {

class ValidationGuard : public ::testing::Environment {
 public:
  void TearDown() override {
    const auto messages = moevk::vk::Instance::process_validation_messages();
    EXPECT_TRUE(messages.empty()) << messages.size() << " Vulkan validation message(s) during this run; first: "
                                  << messages.front();
  }
};

[[maybe_unused]] ::testing::Environment* const guard = ::testing::AddGlobalTestEnvironment(new ValidationGuard);

}  // namespace
