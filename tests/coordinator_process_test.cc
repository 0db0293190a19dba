// The real vjepa-coordinator and vjepactl binaries on 127.0.0.1: durability across SIGKILL,
// the CLI end to end, TLS by flags.
#include <signal.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/rpc/client.h"
#include "common/status/grpc_status.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/test_cluster.h"
#include "vjepa/v1/job.grpc.pb.h"
#include "vjepa/v1/worker.grpc.pb.h"

namespace vjepa {
namespace {

using testing::CoordinatorProcess;
using ::testing::HasSubstr;
using testing::RunResult;

std::string Spec(const std::string& name) {
  return "name: " + name + "\nmodel: {preset: nano}\ndataset: {manifest: data/m.csv}\n";
}

class CoordinatorProcessTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_.Write("tokens", testing::TestTokenFile()); }

  std::unique_ptr<v1::JobService::Stub> Stub(const CoordinatorProcess& c) {
    auto channel = rpc::MakeChannel({c.address()});
    EXPECT_OK(channel.status());
    return v1::JobService::NewStub(*channel);
  }

  // vjepactl against `c` as alice.
  RunResult Ctl(const CoordinatorProcess& c, std::vector<std::string> args,
                const std::string& stdin_text = "") {
    std::vector<std::string> argv = {testing::BinDir() + "/vjepactl"};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::Run(
        argv, absl::Seconds(60),
        {"VJEPA_COORDINATOR=" + c.address(), std::string("VJEPA_TOKEN=") + testing::kAliceToken},
        stdin_text);
  }

  testing::ScratchDir dir_;
};

TEST_F(CoordinatorProcessTest, AcknowledgedJobsSurviveSigkill) {
  const std::string data = dir_.File("data");
  constexpr int kJobs = 12;
  std::map<std::string, v1::JobState> acknowledged;
  {
    CoordinatorProcess c(data, dir_.File("tokens"));
    ASSERT_TRUE(c.ok()) << c.process().Log();
    auto stub = Stub(c);
    for (int i = 0; i < kJobs; ++i) {
      auto ctx = rpc::MakeContext(testing::kAliceToken, absl::Seconds(30));
      v1::SubmitJobRequest req;
      req.set_spec_yaml(Spec("durable-" + std::to_string(i)));
      req.set_client_request_id("req-" + std::to_string(i));
      v1::SubmitJobResponse resp;
      ASSERT_TRUE(stub->SubmitJob(ctx.get(), req, &resp).ok());
      acknowledged[resp.job().id()] = v1::PENDING;
      if (i % 3 == 0) {
        auto cctx = rpc::MakeContext(testing::kAliceToken, absl::Seconds(30));
        v1::CancelJobRequest cancel;
        cancel.set_id(resp.job().id());
        v1::CancelJobResponse cresp;
        ASSERT_TRUE(stub->CancelJob(cctx.get(), cancel, &cresp).ok());
        acknowledged[resp.job().id()] = v1::CANCELLED;
      }
    }
    c.process().Signal(SIGKILL);
    EXPECT_EQ(c.process().Wait(absl::Seconds(30)), 128 + SIGKILL);
  }
  CoordinatorProcess again(data, dir_.File("tokens"));
  ASSERT_TRUE(again.ok()) << again.process().Log();
  auto stub = Stub(again);
  auto ctx = rpc::MakeContext(testing::kAliceToken, absl::Seconds(30));
  v1::ListJobsResponse list;
  ASSERT_TRUE(stub->ListJobs(ctx.get(), {}, &list).ok());
  std::map<std::string, v1::JobState> found;
  for (const auto& j : list.jobs()) found[j.id()] = j.state();
  EXPECT_EQ(found, acknowledged);
  // A retried submit after the restart is still recognised.
  auto rctx = rpc::MakeContext(testing::kAliceToken, absl::Seconds(30));
  v1::SubmitJobRequest retry;
  retry.set_spec_yaml(Spec("durable-1"));
  retry.set_client_request_id("req-1");
  v1::SubmitJobResponse resp;
  ASSERT_TRUE(stub->SubmitJob(rctx.get(), retry, &resp).ok());
  EXPECT_TRUE(resp.deduplicated());
  // SIGTERM stops it cleanly.
  again.process().Signal(SIGTERM);
  EXPECT_EQ(again.process().Wait(absl::Seconds(30)), 0);
}

TEST_F(CoordinatorProcessTest, ASecondCoordinatorOnTheSameDataDirIsRefused) {
  const std::string data = dir_.File("data");
  CoordinatorProcess first(data, dir_.File("tokens"));
  ASSERT_TRUE(first.ok()) << first.process().Log();
  RunResult second = testing::Run({testing::BinDir() + "/vjepa-coordinator", "--listen=127.0.0.1:0",
                                   "--data_dir=" + data, "--auth_tokens=" + dir_.File("tokens")});
  EXPECT_EQ(second.exit_code, 2);
  EXPECT_THAT(second.err, HasSubstr("in use by another coordinator"));
  RunResult no_tokens =
      testing::Run({testing::BinDir() + "/vjepa-coordinator", "--data_dir=" + data + "2"});
  EXPECT_EQ(no_tokens.exit_code, 2);
  EXPECT_THAT(no_tokens.err, HasSubstr("--auth_tokens: must name a token file"));
}

TEST_F(CoordinatorProcessTest, VjepactlDrivesTheJobApi) {
  CoordinatorProcess c(
      dir_.File("data"), dir_.File("tokens"),
      {"--metrics_listen=127.0.0.1:0", "--metrics_port_file=" + dir_.File("metrics_port")});
  ASSERT_TRUE(c.ok()) << c.process().Log();

  RunResult empty = Ctl(c, {"get", "jobs", "-o", "json"});
  ASSERT_EQ(empty.exit_code, 0) << empty.err;
  EXPECT_EQ(nlohmann::json::parse(empty.out), nlohmann::json::array());

  const std::string micro = testing::SourceDir() + "/examples/jobs/micro.yaml";
  RunResult submitted = Ctl(c, {"submit", "-f", micro, "-o", "json"});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  auto job = nlohmann::json::parse(submitted.out);
  ASSERT_TRUE(job["id"].is_string());
  const std::string id = job["id"];
  EXPECT_EQ(job["name"], "micro");
  EXPECT_EQ(job["state"], "PENDING");

  RunResult with_set = Ctl(c, {"submit", "-f", micro, "--set", "optim.steps=7", "--set",
                               "name=micro-short", "-o", "json"});
  ASSERT_EQ(with_set.exit_code, 0) << with_set.err;
  const std::string id2 = nlohmann::json::parse(with_set.out)["id"];

  RunResult jobs = Ctl(c, {"get", "jobs", "-o", "json"});
  ASSERT_EQ(jobs.exit_code, 0) << jobs.err;
  auto list = nlohmann::json::parse(jobs.out);
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0]["id"], id);
  EXPECT_EQ(list[0]["owner"], "alice");
  EXPECT_EQ(list[1]["name"], "micro-short");

  RunResult described = Ctl(c, {"describe", "job", id2, "-o", "json"});
  ASSERT_EQ(described.exit_code, 0) << described.err;
  auto d = nlohmann::json::parse(described.out);
  EXPECT_EQ(d["spec"]["optim"]["steps"], 7);
  EXPECT_EQ(d["spec"]["resources"]["trainers"], 1);

  RunResult table = Ctl(c, {"get", "jobs"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("NAME"));
  EXPECT_THAT(table.out, HasSubstr(id));
  RunResult yaml = Ctl(c, {"get", "jobs", "-o", "yaml"});
  ASSERT_EQ(yaml.exit_code, 0) << yaml.err;
  EXPECT_THAT(yaml.out, HasSubstr("state: PENDING"));

  RunResult cancelled = Ctl(c, {"cancel", id, "-o", "json"});
  ASSERT_EQ(cancelled.exit_code, 0) << cancelled.err;
  EXPECT_EQ(nlohmann::json::parse(cancelled.out)["state"], "CANCELLED");
  RunResult only_cancelled = Ctl(c, {"get", "jobs", "--state", "CANCELLED", "-o", "json"});
  ASSERT_EQ(only_cancelled.exit_code, 0) << only_cancelled.err;
  auto cancelled_list = nlohmann::json::parse(only_cancelled.out);
  ASSERT_EQ(cancelled_list.size(), 1u);
  EXPECT_EQ(cancelled_list[0]["id"], id);
  RunResult bad_state = Ctl(c, {"get", "jobs", "--state", "DONE"});
  EXPECT_EQ(bad_state.exit_code, 2);
  // The job is over, so watch replays its events and ends by itself.
  RunResult watched = Ctl(c, {"watch", id, "-o", "json"});
  ASSERT_EQ(watched.exit_code, 0) << watched.err;
  EXPECT_THAT(watched.out, HasSubstr("\"CANCELLED\""));

  // Errors: the server's message and a non-zero exit.
  RunResult missing = Ctl(c, {"describe", "job", "j-missing"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_THAT(missing.err, HasSubstr("job j-missing not found"));
  RunResult bad = Ctl(c, {"submit", "-f", micro, "--set", "optim.lr.peak=-1"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_THAT(bad.err, HasSubstr("optim.lr.peak: must be > 0, got -1"));
  RunResult stdin_spec = Ctl(c, {"submit", "-f", "-", "-o", "json"}, Spec("from-stdin"));
  EXPECT_EQ(stdin_spec.exit_code, 0) << stdin_spec.err;

  RunResult workers = Ctl(c, {"get", "workers", "-o", "json"});
  ASSERT_EQ(workers.exit_code, 0) << workers.err;
  EXPECT_EQ(nlohmann::json::parse(workers.out), nlohmann::json::array());

  // What happened is on /metrics.
  const int metrics_port = testing::ReadPortFile(dir_.File("metrics_port"));
  ASSERT_GT(metrics_port, 0);
  RunResult scraped = testing::Run(
      {"/usr/bin/curl", "-sf", absl::StrCat("http://127.0.0.1:", metrics_port, "/metrics")});
  ASSERT_EQ(scraped.exit_code, 0) << scraped.err;
  EXPECT_THAT(scraped.out, HasSubstr("vjepa_coordinator_jobs_submitted_total 3"));
  EXPECT_THAT(scraped.out, HasSubstr("vjepa_coordinator_jobs{state=\"CANCELLED\"} 1"));
  EXPECT_THAT(scraped.out, HasSubstr("vjepa_coordinator_rpc_handled_total{code=\"NOT_FOUND\","
                                     "method=\"/vjepa.v1.JobService/GetJob\"} 1"));

  // Another user sees none of alice's jobs.
  RunResult bobs = testing::Run({testing::BinDir() + "/vjepactl", "--coordinator", c.address(),
                                 "--token", testing::kBobToken, "get", "jobs", "-o", "json"});
  ASSERT_EQ(bobs.exit_code, 0) << bobs.err;
  EXPECT_EQ(nlohmann::json::parse(bobs.out), nlohmann::json::array());
  RunResult unauthenticated =
      testing::Run({testing::BinDir() + "/vjepactl", "--coordinator", c.address(), "--token",
                    "nope-nope-nope-nope", "get", "jobs"});
  EXPECT_NE(unauthenticated.exit_code, 0);
  EXPECT_THAT(unauthenticated.err, HasSubstr("UNAUTHENTICATED"));
}

TEST_F(CoordinatorProcessTest, ASilentWorkerShowsAsLostInGetWorkers) {
  CoordinatorProcess c(dir_.File("data"), dir_.File("tokens"),
                       {"--heartbeat_interval=100ms", "--worker_lost_after=1500ms"});
  ASSERT_TRUE(c.ok()) << c.process().Log();
  auto channel = rpc::MakeChannel({c.address()});
  ASSERT_OK(channel.status());
  auto workers = v1::WorkerService::NewStub(*channel);
  auto register_worker = [&](const std::string& name) {
    auto ctx = rpc::MakeContext(testing::kWorkerToken, absl::Seconds(30));
    v1::RegisterWorkerRequest req;
    req.set_name(name);
    req.set_incarnation(1);
    req.set_kind(v1::DATAWORKER);
    req.set_advertise_address("127.0.0.1:1");
    v1::RegisterWorkerResponse resp;
    EXPECT_TRUE(workers->RegisterWorker(ctx.get(), req, &resp).ok());
    EXPECT_EQ(resp.heartbeat_interval_ms(), 100);
    return resp.worker().id();
  };
  const std::string beating = register_worker("dw-beating");
  const std::string silent = register_worker("dw-silent");
  // Keep one worker beating while the other stays silent past its deadline.
  auto states = [&] {
    RunResult r = Ctl(c, {"get", "workers", "-o", "json"});
    std::map<std::string, std::string> out;
    if (r.exit_code != 0) return out;
    for (const auto& w : nlohmann::json::parse(r.out)) out[w["name"]] = w["state"];
    return out;
  };
  const bool lost = testing::WaitFor(
      [&] {
        auto ctx = rpc::MakeContext(testing::kWorkerToken, absl::Seconds(30));
        v1::HeartbeatRequest hb;
        hb.set_worker_id(beating);
        v1::HeartbeatResponse resp;
        EXPECT_TRUE(workers->Heartbeat(ctx.get(), hb, &resp).ok());
        return states()["dw-silent"] == "LOST";
      },
      absl::Seconds(60));
  ASSERT_TRUE(lost);
  EXPECT_EQ(states()["dw-beating"], "ALIVE");
  // The lost worker is told to register again.
  auto ctx = rpc::MakeContext(testing::kWorkerToken, absl::Seconds(30));
  v1::HeartbeatRequest hb;
  hb.set_worker_id(silent);
  v1::HeartbeatResponse resp;
  EXPECT_EQ(workers->Heartbeat(ctx.get(), hb, &resp).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(CoordinatorProcessTest, VjepactlHelpListsTheVerbs) {
  RunResult help = testing::Run({testing::BinDir() + "/vjepactl", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  for (const char* verb : {"submit", "get", "describe", "cancel", "watch"}) {
    EXPECT_THAT(help.out, HasSubstr(verb));
  }
  for (const char* verb : {"submit", "get", "describe", "cancel", "watch"}) {
    RunResult h = testing::Run({testing::BinDir() + "/vjepactl", verb, "--help"});
    EXPECT_EQ(h.exit_code, 0) << verb;
    EXPECT_THAT(h.out, HasSubstr("-o")) << verb;
  }
}

TEST_F(CoordinatorProcessTest, TlsAndMutualTlsByFlags) {
  const std::string d = dir_.path();
  ASSERT_TRUE(testing::MakeTestCertificates(d, "alice")) << "openssl failed";
  CoordinatorProcess c(dir_.File("data"), dir_.File("tokens"),
                       {"--tls_cert=" + d + "/server.pem", "--tls_key=" + d + "/server.key",
                        "--tls_client_ca=" + d + "/ca.pem"});
  ASSERT_TRUE(c.ok()) << c.process().Log();
  std::vector<std::string> base = {testing::BinDir() + "/vjepactl",
                                   "--coordinator",
                                   c.address(),
                                   "--token",
                                   testing::kAliceToken,
                                   "--tls-ca",
                                   d + "/ca.pem"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> argv = base;
    argv.insert(argv.end(), extra.begin(), extra.end());
    return testing::Run(argv);
  };
  RunResult no_cert = with({"get", "jobs", "--timeout", "5"});
  EXPECT_NE(no_cert.exit_code, 0);
  RunResult mutual = with({"--tls-cert", d + "/client.pem", "--tls-key", d + "/client.key", "get",
                           "jobs", "-o", "json"});
  EXPECT_EQ(mutual.exit_code, 0) << mutual.err;
  EXPECT_EQ(mutual.out, "[]\n");
  RunResult plaintext =
      testing::Run({testing::BinDir() + "/vjepactl", "--coordinator", c.address(), "--token",
                    testing::kAliceToken, "--timeout", "5", "get", "jobs"});
  EXPECT_NE(plaintext.exit_code, 0);
}

}  // namespace
}  // namespace vjepa
