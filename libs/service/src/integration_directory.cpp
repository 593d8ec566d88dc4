#include "amoauth/service/integration_directory.hpp"

#include <spdlog/spdlog.h>

namespace amoauth::service {

IntegrationDirectory::IntegrationDirectory(Integration primary, IntegrationStore& store)
    : primary_(std::move(primary)), store_(store) {}

Integration IntegrationDirectory::External(const ExternalIntegration& external) const {
  Integration integration = primary_;
  integration.client_id = external.client_id;
  integration.client_secret = external.client_secret;
  return integration;
}

Task<Result<Integration>> IntegrationDirectory::Resolve(std::string client_id) {
  if (client_id == primary_.client_id) {
    co_return primary_;
  }
  {
    std::lock_guard lock(mutex_);
    if (auto it = known_.find(client_id); it != known_.end()) {
      co_return it->second;
    }
  }
  auto found = co_await store_.FindIntegration(client_id);
  if (!found) {
    co_return found.error();
  }
  if (!*found) {
    co_return Fail(Errc::kIntegrationUnknown);
  }
  Integration integration = External(**found);
  std::lock_guard lock(mutex_);
  known_.emplace(std::move(client_id), integration);
  co_return integration;
}

Task<Result<void>> IntegrationDirectory::Add(ExternalIntegration external) {
  const core::TimePoint created_before = external.created_at - kUnusedIntegrationLifetime;
  auto forgotten = co_await store_.ForgetUnusedIntegrations(created_before);
  if (!forgotten) {
    spdlog::warn("could not forget unused external integrations: {}", forgotten.error().message());
  } else if (*forgotten > 0) {
    spdlog::info("forgot {} external integration(s) that never connected an account", *forgotten);
    // Which ones is not known here; the cache refills from the store on demand.
    std::lock_guard lock(mutex_);
    known_.clear();
  }
  co_return co_await store_.AddIntegration(std::move(external));
}

Task<Result<std::optional<Integration>>> IntegrationDirectory::ForState(std::string state_hash) {
  auto found = co_await store_.FindIntegrationByState(std::move(state_hash));
  if (!found) {
    co_return found.error();
  }
  if (!*found) {
    co_return std::optional<Integration>();
  }
  co_return std::optional<Integration>(External(**found));
}

}  // namespace amoauth::service
