#include "amoauth/net/one_thread_context.hpp"

namespace amoauth::net {
namespace {

/// The mark: a service that does nothing but exist in the context's registry.
class RunByOneThread final : public boost::asio::execution_context::service {
 public:
  // Asio's identity of a service type (key_type with RTTI, id without).
  using key_type = RunByOneThread;
  static inline boost::asio::execution_context::id id;

  explicit RunByOneThread(boost::asio::execution_context& context) : service(context) {}

 private:
  void shutdown() override {}
};

}  // namespace

void MarkRunByOneThread(boost::asio::io_context& context) {
  static_cast<void>(boost::asio::use_service<RunByOneThread>(
      static_cast<boost::asio::execution_context&>(context)));
}

bool IsRunByOneThread(boost::asio::io_context& context) {
  return boost::asio::has_service<RunByOneThread>(
      static_cast<boost::asio::execution_context&>(context));
}

}  // namespace amoauth::net
