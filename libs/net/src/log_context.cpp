#include "amoauth/net/log_context.hpp"

#include <algorithm>

namespace amoauth::net {
namespace {

namespace asio = boost::asio;

/// Non-trivial thread_locals are reached through functions: one initialisation per thread.
std::shared_ptr<const std::string>& Current() noexcept {
  thread_local std::shared_ptr<const std::string> current;
  return current;
}

int& Depth() noexcept {
  thread_local int depth = 0;
  return depth;
}

using IoExecutor = asio::io_context::executor_type;
using IoStrand = asio::strand<IoExecutor>;

std::shared_ptr<LogSlot> FixedSlot(std::shared_ptr<const std::string> id) {
  auto slot = std::make_shared<LogSlot>();
  slot->id = std::move(id);
  return slot;
}

}  // namespace

const std::string* CurrentLogId() noexcept {
  return Current().get();
}

std::shared_ptr<const std::string> CurrentLogIdShared() noexcept {
  return Current();
}

LogScope::LogScope(std::shared_ptr<const std::string> id) noexcept
    : previous_(std::exchange(Current(), std::move(id))) {
  ++Depth();
}

LogScope::~LogScope() {
  --Depth();
  Current() = std::move(previous_);
}

void SetLogId(LogSlot& slot, std::string id) {
  std::shared_ptr<const std::string> shared;
  if (!id.empty()) {
    shared = std::make_shared<const std::string>(std::move(id));
  }
  slot.id = shared;
  // Inside a scope only: its end restores the thread's previous id, so the id never outlives
  // the function that runs for this slot.
  if (Depth() > 0) {
    Current() = std::move(shared);
  }
}

bool IsAcceptableRequestId(std::string_view id) noexcept {
  // Letters, digits and the punctuation of UUIDs, base64 and trace headers: nothing that needs
  // escaping in a header, HTML or a log line.
  constexpr std::string_view kPunctuation = "-._:~+/=@,;";
  auto allowed = [kPunctuation](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           kPunctuation.find(c) != std::string_view::npos;
  };
  return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), allowed);
}

asio::any_io_executor WithLogId(const asio::any_io_executor& executor,
                                std::shared_ptr<const std::string> id) {
  auto slot = FixedSlot(std::move(id));
  // Unwrap what we wrapped, and keep the io_context's own executor and strands over it in one
  // layer of type erasure.
  if (const auto* wrapped = executor.target<LogContextExecutor<IoStrand>>()) {
    return WithLogSlot(wrapped->InnerExecutor(), std::move(slot));
  }
  if (const auto* wrapped = executor.target<LogContextExecutor<IoExecutor>>()) {
    return WithLogSlot(wrapped->InnerExecutor(), std::move(slot));
  }
  if (const auto* wrapped = executor.target<LogContextExecutor<asio::any_io_executor>>()) {
    return WithLogSlot(wrapped->InnerExecutor(), std::move(slot));
  }
  if (const auto* strand = executor.target<IoStrand>()) {
    return WithLogSlot(*strand, std::move(slot));
  }
  if (const auto* io = executor.target<IoExecutor>()) {
    return WithLogSlot(*io, std::move(slot));
  }
  return WithLogSlot(executor, std::move(slot));
}

}  // namespace amoauth::net
