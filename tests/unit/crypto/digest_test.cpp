#include "amoauth/crypto/digest.hpp"

#include <string>

#include <gtest/gtest.h>

namespace amoauth::crypto {
namespace {

TEST(Digest, Sha256OfAbc) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Digest, Sha256OfEmptyString) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

// protocol §7.1: the signature amoCRM puts on the disconnect hook.
TEST(Digest, DisconnectHookSignatureVector) {
  EXPECT_EQ(HmacSha256Hex("TEST_CLIENT_SECRET", "0b0832f6-d123-4123-9123-e73f236833c0|12345678"),
            "d965a65f7afff2a20c87a5e472fd544e85b7636e69967bf9bdcde459ef1a9fa6");
}

// RFC 4231 §4.2 (test case 1) and §4.3 (test case 2).
TEST(Digest, HmacSha256Rfc4231TestCase1) {
  EXPECT_EQ(HmacSha256Hex(std::string(20, '\x0b'), "Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

TEST(Digest, HmacSha256Rfc4231TestCase2) {
  EXPECT_EQ(HmacSha256Hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

// RFC 4231 §4.7 (test case 6): a key longer than the block size is hashed first.
TEST(Digest, HmacSha256Rfc4231LongKey) {
  EXPECT_EQ(HmacSha256Hex(std::string(131, '\xaa'),
                          "Test Using Larger Than Block-Size Key - Hash Key First"),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(Digest, HmacRawIs32BytesAndMatchesHex) {
  const std::string raw = HmacSha256("key", "message");
  ASSERT_EQ(raw.size(), 32U);
  std::string hex;
  for (const char c : raw) {
    static constexpr char kDigits[] = "0123456789abcdef";
    hex += kDigits[(static_cast<unsigned char>(c) >> 4U) & 0xFU];
    hex += kDigits[static_cast<unsigned char>(c) & 0xFU];
  }
  EXPECT_EQ(hex, HmacSha256Hex("key", "message"));
}

TEST(Digest, HmacAcceptsEmptyKeyAndMessage) {
  // Python: hmac.new(b"", b"", hashlib.sha256).hexdigest()
  EXPECT_EQ(HmacSha256Hex("", ""),
            "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

}  // namespace
}  // namespace amoauth::crypto
