#pragma once

// An io_context that exactly one thread runs — serve runs one per thread (ADR 0007) — may be
// marked so, and code handed one of its executors may then skip a strand: on one thread,
// handlers never run at once. The mark is an Asio service of the context, so it travels with the
// context itself, with no list to hand around.

#include <boost/asio/io_context.hpp>

namespace amoauth::net {

/// Marks `context` as run by one thread only. Call before it runs, and run it so: every user of
/// the mark relies on it.
void MarkRunByOneThread(boost::asio::io_context& context);

/// Whether `context` was marked by MarkRunByOneThread.
[[nodiscard]] bool IsRunByOneThread(boost::asio::io_context& context);

}  // namespace amoauth::net
