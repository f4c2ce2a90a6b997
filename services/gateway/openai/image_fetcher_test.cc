#include "services/gateway/openai/image_fetcher.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/tls/test_certificates.h"

namespace glm4v::openai {
namespace {

const std::string kPng = std::string("\x89PNG\r\n\x1a\n", 8) + "rest of a png";

TEST(IsPublicAddressTest, RefusesInternalRanges) {
  for (const char* ip :
       {"127.0.0.1", "127.255.0.1", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1",
        "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1", "::",
        "fe80::1", "fd00::1", "fc00::2", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
        "64:ff9b::a00:1", "2001:db8::1", "not an ip",
        // 6to4 and Teredo wrapping loopback / private IPv4 (Teredo's client bits inverted)
        "2002:7f00:1::", "2002:a00:1::1", "2001:0:808:808::80ff:fffe", "2001:0:a00:1::f7f7:f7f7"}) {
    EXPECT_FALSE(IsPublicAddress(ip)) << ip;
  }
  for (const char* ip : {"8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "2606:4700::1111",
                         "::ffff:8.8.8.8", "2002:808:808::1", "2001:0:808:808::f7f7:f7f7"}) {
    EXPECT_TRUE(IsPublicAddress(ip)) << ip;
  }
}

class ImageFetcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.Get("/cat.png", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(kPng, "image/png");
    });
    server_.Get("/octet", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(kPng, "application/octet-stream");
    });
    server_.Get("/big.png", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(kPng + std::string(5000, 'x'), "image/png");
    });
    server_.Get("/page", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("<html></html>", "text/html");
    });
    server_.Get("/fake.png", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("GIF89a...", "image/png");
    });
    server_.Get("/missing", [](const httplib::Request&, httplib::Response& res) {
      res.status = 404;
    });
    server_.Get("/hop", [](const httplib::Request&, httplib::Response& res) {
      res.set_redirect("/cat.png");
    });
    server_.Get("/dir/cat.png", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(kPng, "image/png");
    });
    server_.Get("/dir/relative", [](const httplib::Request&, httplib::Response& res) {
      res.set_redirect("cat.png");  // relative to /dir/
    });
    server_.Get(R"(/chain/(\d+))", [](const httplib::Request& req, httplib::Response& res) {
      res.set_redirect(absl::StrCat("/chain/", std::stoi(req.matches[1]) + 1));
    });
    server_.Get("/slow", [](const httplib::Request&, httplib::Response& res) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1500));
      res.set_content(kPng, "image/png");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  void TearDown() override {
    server_.stop();
    thread_.join();
  }
  std::string Url(const std::string& path) const {
    return absl::StrCat("http://127.0.0.1:", port_, path);
  }
  ImageFetcher Local(int64_t max_bytes = 1000) const {
    ImageFetcher::Options options;
    options.allow_private_addresses = true;  // the test server is on loopback
    options.max_bytes = max_bytes;
    options.timeout = absl::Seconds(1);
    return ImageFetcher(options);
  }

  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
};

TEST_F(ImageFetcherTest, FetchesAnImageAndFollowsRedirects) {
  auto image = Local().Fetch(Url("/cat.png"));
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->bytes, kPng);
  EXPECT_EQ(image->mime_type, "image/png");
  image = Local().Fetch(Url("/hop"));
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->bytes, kPng);
  image = Local().Fetch(Url("/dir/relative"));
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->bytes, kPng);
  EXPECT_TRUE(Local().Fetch(Url("/octet")).ok());  // type from the bytes
}

TEST_F(ImageFetcherTest, LimitsAreClearErrors) {
  struct Case {
    std::string path;
    absl::StatusCode code;
    std::string message;
  } cases[] = {
      {"/big.png", absl::StatusCode::kInvalidArgument, "larger than 1000 bytes"},
      {"/page", absl::StatusCode::kInvalidArgument, "'text/html', not an image"},
      {"/fake.png", absl::StatusCode::kInvalidArgument, "neither PNG nor JPEG"},
      {"/missing", absl::StatusCode::kInvalidArgument, "HTTP 404"},
      {"/chain/0", absl::StatusCode::kInvalidArgument, "redirects more than 3 times"},
      {"/slow", absl::StatusCode::kDeadlineExceeded, "took too long"},
  };
  for (const Case& c : cases) {
    auto image = Local().Fetch(Url(c.path));
    ASSERT_FALSE(image.ok()) << c.path;
    EXPECT_EQ(image.status().code(), c.code) << c.path << ": " << image.status();
    EXPECT_NE(image.status().message().find(c.message), std::string::npos) << image.status();
  }
}

TEST_F(ImageFetcherTest, RefusesInternalAddressesByDefault) {
  ImageFetcher::Options options;  // allow_private_addresses = false
  ImageFetcher fetcher(options);
  for (const std::string& url :
       {Url("/cat.png"), absl::StrCat("http://localhost:", port_, "/cat.png"),
        absl::StrCat("http://[::1]:", port_, "/cat.png"),
        std::string("http://169.254.169.254/latest/meta-data/"),
        std::string("http://10.0.0.1/x.png"), std::string("https://192.168.0.10/x.png")}) {
    auto image = fetcher.Fetch(url);
    ASSERT_FALSE(image.ok()) << url;
    EXPECT_EQ(image.status().code(), absl::StatusCode::kInvalidArgument) << url;
    EXPECT_NE(image.status().message().find("--allow_private_image_urls"), std::string::npos)
        << image.status();
  }
  // The refusal does not tell which address a name resolved to (no map of the network).
  auto image = fetcher.Fetch(absl::StrCat("http://localhost:", port_, "/cat.png"));
  ASSERT_FALSE(image.ok());
  EXPECT_EQ(image.status().message().find("127.0.0.1"), std::string::npos) << image.status();
  EXPECT_EQ(image.status().message().find("::1"), std::string::npos) << image.status();
}

// A server that sends a status line and then a header byte every 200 ms, never ending its
// headers: every single read is quick, so only the whole-fetch deadline can stop it.
TEST(ImageFetcherTrickleTest, TheDeadlineCoversTheHeaders) {
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ASSERT_EQ(listen(listener, 1), 0);
  std::atomic<bool> stop{false};
  std::thread server([&] {
    const int conn = accept(listener, nullptr, nullptr);
    if (conn < 0) return;
    const std::string status = "HTTP/1.1 200 OK\r\nX-Slow: ";
    send(conn, status.data(), status.size(), MSG_NOSIGNAL);
    while (!stop.load() && send(conn, "a", 1, MSG_NOSIGNAL) == 1) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    close(conn);
  });
  ImageFetcher::Options options;
  options.allow_private_addresses = true;
  options.timeout = absl::Seconds(1);
  const absl::Time start = absl::Now();
  auto image = ImageFetcher(options).Fetch(
      absl::StrCat("http://127.0.0.1:", ntohs(addr.sin_port), "/x.png"));
  const absl::Duration took = absl::Now() - start;
  stop.store(true);
  server.join();
  close(listener);
  ASSERT_FALSE(image.ok());
  EXPECT_EQ(image.status().code(), absl::StatusCode::kDeadlineExceeded) << image.status();
  EXPECT_LT(took, absl::Seconds(4)) << "the 1 s deadline did not hold";
}

// https: the server's certificate is verified (here against the test CA given as ca_file).
TEST(ImageFetcherHttpsTest, VerifiesTheServersCertificate) {
  auto certs = testing::MakeTestCertificates("fetch");
  ASSERT_TRUE(certs.ok()) << certs.status();
  const std::string dir = *certs + "/";
  httplib::SSLServer server((dir + "server.pem").c_str(), (dir + "server.key").c_str());
  ASSERT_TRUE(server.is_valid());
  server.Get("/cat.png", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(kPng, "image/png");
  });
  const int port = server.bind_to_any_port("127.0.0.1");
  ASSERT_GT(port, 0);
  std::thread thread([&] { server.listen_after_bind(); });
  while (!server.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ImageFetcher::Options options;
  options.allow_private_addresses = true;
  options.ca_file = dir + "ca.pem";
  const std::string url = absl::StrCat("https://localhost:", port, "/cat.png");
  auto image = ImageFetcher(options).Fetch(url);
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->bytes, kPng);
  // Not trusted: a certificate from another CA (the system's CAs do not know the test CA).
  options.ca_file = dir + "other_ca.pem";
  image = ImageFetcher(options).Fetch(url);
  ASSERT_FALSE(image.ok());
  EXPECT_NE(image.status().message().find("untrusted certificate"), std::string::npos)
      << image.status();
  server.stop();
  thread.join();
}

TEST_F(ImageFetcherTest, MalformedUrls) {
  for (const char* url : {"ftp://example.com/a.png", "http://", "http://user:pw@example.com/a",
                          "http://example.com:99999/a", "http://[::1/a",
                          "http://no-such-host.invalid/a.png"}) {
    auto image = Local().Fetch(url);
    ASSERT_FALSE(image.ok()) << url;
    EXPECT_EQ(image.status().code(), absl::StatusCode::kInvalidArgument) << url << image.status();
  }
}

}  // namespace
}  // namespace glm4v::openai
