#include "cli/vjepactl/commands.h"

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/rpc/client.h"
#include "common/rpc/server.h"
#include "common/spec/job_spec.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace vjepa::vjepactl {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::StartsWith;

constexpr char kSpec[] = R"(name: tiny
dataset:
  manifest: /data/manifest.txt
model:
  preset: nano
optim:
  steps: 100
)";

constexpr int64_t kT0 = 1714566896000;  // 2024-05-01T12:34:56Z

std::string Bearer(const grpc::ServerContext* context) {
  auto it = context->client_metadata().find("authorization");
  if (it == context->client_metadata().end()) return "";
  return std::string(it->second.data(), it->second.size());
}

// An in-memory JobService with knobs for the failures a client must survive.
class FakeJobService final : public v1::JobService::Service {
 public:
  grpc::Status SubmitJob(grpc::ServerContext* context, const v1::SubmitJobRequest* request,
                         v1::SubmitJobResponse* response) override {
    std::lock_guard<std::mutex> lock(mu_);
    submits.push_back(*request);
    tokens.push_back(Bearer(context));
    if (submit_failures > 0) {
      --submit_failures;
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "coordinator is starting");
    }
    if (auto it = by_request_id_.find(request->client_request_id()); it != by_request_id_.end()) {
      *response->mutable_job() = jobs_[it->second];
      response->set_deduplicated(true);
      return grpc::Status::OK;
    }
    v1::Job& job = AddLocked("submitted", v1::PENDING);
    job.set_spec_yaml(request->spec_yaml());
    job.set_client_request_id(request->client_request_id());
    by_request_id_[request->client_request_id()] = job.id();
    *response->mutable_job() = job;
    return grpc::Status::OK;
  }

  grpc::Status GetJob(grpc::ServerContext*, const v1::GetJobRequest* request,
                      v1::GetJobResponse* response) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++get_calls;
    auto it = jobs_.find(request->id());
    if (it == jobs_.end()) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND,
                          absl::StrCat("job ", request->id(), " not found"));
    }
    *response->mutable_job() = it->second;
    return grpc::Status::OK;
  }

  grpc::Status ListJobs(grpc::ServerContext*, const v1::ListJobsRequest* request,
                        v1::ListJobsResponse* response) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++list_calls;
    size_t start = 0;
    if (!request->page_token().empty() && !absl::SimpleAtoi(request->page_token(), &start)) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad page token");
    }
    for (size_t i = start; i < order_.size() && i < start + 2; ++i) {
      *response->add_jobs() = jobs_[order_[i]];
    }
    if (start + 2 < order_.size()) response->set_next_page_token(std::to_string(start + 2));
    return grpc::Status::OK;
  }

  grpc::Status CancelJob(grpc::ServerContext*, const v1::CancelJobRequest* request,
                         v1::CancelJobResponse* response) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = jobs_.find(request->id());
    if (it == jobs_.end()) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND,
                          absl::StrCat("job ", request->id(), " not found"));
    }
    if (it->second.state() == v1::SUCCEEDED || it->second.state() == v1::FAILED) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          absl::StrCat("job ", request->id(), " already ended ",
                                       v1::JobState_Name(it->second.state())));
    }
    it->second.set_state(v1::CANCELLED);
    it->second.set_message(request->reason());
    *response->mutable_job() = it->second;
    return grpc::Status::OK;
  }

  // Sends the events after `after_seq`; the first `watch_cuts` calls stop after one event with
  // UNAVAILABLE, the first `watch_stalls` calls send nothing until their deadline.
  grpc::Status WatchJob(grpc::ServerContext* context, const v1::WatchJobRequest* request,
                        grpc::ServerWriter<v1::JobEvent>* writer) override {
    std::vector<v1::JobEvent> events;
    bool cut = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      watch_after_seqs.push_back(request->after_seq());
      if (jobs_.count(request->id()) == 0) {
        return grpc::Status(grpc::StatusCode::NOT_FOUND,
                            absl::StrCat("job ", request->id(), " not found"));
      }
      if (watch_stalls > 0) {
        --watch_stalls;
        events.clear();
      } else {
        for (const v1::JobEvent& e : events_[request->id()]) {
          if (e.seq() > request->after_seq()) events.push_back(e);
        }
        if (watch_cuts > 0) {
          --watch_cuts;
          cut = true;
        }
      }
    }
    if (events.empty()) {
      while (!context->IsCancelled()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      return grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
    }
    for (const v1::JobEvent& e : events) {
      writer->Write(e);
      if (cut) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "coordinator restarting");
    }
    return grpc::Status::OK;
  }

  // Adds a job (ids j-1, j-2, ...) with events submitted → state.
  std::string Add(const std::string& name, v1::JobState state) {
    std::lock_guard<std::mutex> lock(mu_);
    v1::Job& job = AddLocked(name, state);
    return job.id();
  }
  void AddEvent(const std::string& id, const std::string& type, v1::JobState state, int64_t step,
                const std::string& message) {
    std::lock_guard<std::mutex> lock(mu_);
    auto& list = events_[id];
    v1::JobEvent e;
    e.set_seq(static_cast<int64_t>(list.size()) + 1);
    e.set_time_ms(kT0 + 1000 * e.seq());
    e.set_type(type);
    e.set_state(state);
    e.set_step(step);
    e.set_message(message);
    list.push_back(e);
  }
  size_t job_count() {
    std::lock_guard<std::mutex> lock(mu_);
    return jobs_.size();
  }

  // Knobs and records; set before the calls, read after them.
  int submit_failures = 0;
  int watch_cuts = 0;
  int watch_stalls = 0;
  std::vector<v1::SubmitJobRequest> submits;
  std::vector<std::string> tokens;
  std::vector<int64_t> watch_after_seqs;
  int get_calls = 0;
  int list_calls = 0;

 private:
  v1::Job& AddLocked(const std::string& name, v1::JobState state) {
    const std::string id = absl::StrCat("j-", order_.size() + 1);
    v1::Job& job = jobs_[id];
    job.set_id(id);
    job.set_name(name);
    job.set_owner("alice");
    job.set_state(state);
    job.set_kind("pretrain");
    job.set_total_steps(100);
    job.set_create_time_ms(kT0);
    job.set_update_time_ms(kT0);
    job.set_spec_yaml(kSpec);
    order_.push_back(id);
    return job;
  }

  std::mutex mu_;
  std::map<std::string, v1::Job> jobs_;
  std::vector<std::string> order_;
  std::map<std::string, std::string> by_request_id_;
  std::map<std::string, std::vector<v1::JobEvent>> events_;
};

class FakeWorkerService final : public v1::WorkerService::Service {
 public:
  grpc::Status ListWorkers(grpc::ServerContext*, const v1::ListWorkersRequest*,
                           v1::ListWorkersResponse* response) override {
    for (const v1::Worker& w : workers) *response->add_workers() = w;
    return grpc::Status::OK;
  }
  std::vector<v1::Worker> workers;
};

class CommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<rpc::RpcServer>(rpc::ServerOptions{},
                                               std::vector<grpc::Service*>{&jobs_, &workers_});
    ASSERT_TRUE(server_->Start().ok());
    config_.coordinator = absl::StrCat("127.0.0.1:", server_->BoundPort());
    config_.token = "t0k";
    config_.timeout = absl::Seconds(10);
    config_.now = [] { return absl::FromUnixMillis(kT0) + absl::Minutes(5); };
    config_.retry.initial_backoff = absl::Milliseconds(1);
    config_.retry.max_backoff = absl::Milliseconds(20);
    auto channel = rpc::MakeChannel({config_.coordinator});
    ASSERT_TRUE(channel.ok()) << channel.status();
    job_stub_ = v1::JobService::NewStub(*channel);
    worker_stub_ = v1::WorkerService::NewStub(*channel);
    dir_ = std::filesystem::temp_directory_path() /
           absl::StrCat("vjepactl-test-", getpid(), "-",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    server_->Stop(absl::ZeroDuration());
    std::filesystem::remove_all(dir_);
  }

  std::string WriteFile(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }

  // Runs a verb; out_ and err_ hold what it printed.
  template <typename F>
  int Run(F verb) {
    out_.str("");
    err_.str("");
    return verb(out_, err_);
  }
  int Submit(const SubmitOptions& options, const std::string& stdin_text = "") {
    std::istringstream in(stdin_text);
    return Run([&](std::ostream& out, std::ostream& err) {
      return vjepactl::Submit(config_, options, job_stub_.get(), in, out, err);
    });
  }
  int Submit(const std::string& spec, std::vector<std::string> overrides = {}) {
    SubmitOptions options;
    options.file = WriteFile("job.yaml", spec);
    options.overrides = std::move(overrides);
    return Submit(options);
  }
  Json OutJson() { return Json::parse(out_.str()); }

  FakeJobService jobs_;
  FakeWorkerService workers_;
  std::unique_ptr<rpc::RpcServer> server_;
  std::unique_ptr<v1::JobService::Stub> job_stub_;
  std::unique_ptr<v1::WorkerService::Stub> worker_stub_;
  CommandConfig config_;
  std::filesystem::path dir_;
  std::ostringstream out_, err_;
};

TEST_F(CommandsTest, SubmitSendsTheCanonicalSpecWithOverridesAndARandomRequestId) {
  config_.output = OutputFormat::kJson;
  ASSERT_EQ(Submit(kSpec, {"optim.steps=50", "seed=7"}), kExitOk) << err_.str();
  ASSERT_EQ(jobs_.submits.size(), 1u);
  auto expected = spec::ParseJobSpec(kSpec, {"optim.steps=50", "seed=7"});
  ASSERT_TRUE(expected.ok()) << expected.status();
  EXPECT_EQ(jobs_.submits[0].spec_yaml(), spec::ToYaml(*expected));
  EXPECT_EQ(expected->optim.steps, 50);
  EXPECT_EQ(expected->seed, 7);
  EXPECT_THAT(jobs_.submits[0].client_request_id(), MatchesRegex("[0-9a-f]{32}"));
  EXPECT_EQ(jobs_.tokens[0], "Bearer t0k");

  const Json job = OutJson();
  EXPECT_EQ(job["id"], "j-1");
  EXPECT_EQ(job["state"], "PENDING");
  EXPECT_EQ(job["deduplicated"], false);
  EXPECT_EQ(job["client_request_id"], jobs_.submits[0].client_request_id());

  ASSERT_EQ(Submit(kSpec), kExitOk);
  EXPECT_NE(jobs_.submits[1].client_request_id(), jobs_.submits[0].client_request_id());
}

TEST_F(CommandsTest, SubmitRetriesUnavailableWithTheSameRequestIdAndCreatesOneJob) {
  jobs_.submit_failures = 3;
  ASSERT_EQ(Submit(kSpec), kExitOk) << err_.str();
  ASSERT_EQ(jobs_.submits.size(), 4u);
  for (const auto& request : jobs_.submits) {
    EXPECT_EQ(request.client_request_id(), jobs_.submits[0].client_request_id());
  }
  EXPECT_EQ(jobs_.job_count(), 1u);
  EXPECT_EQ(out_.str(), "job/j-1 submitted\n");
  EXPECT_EQ(err_.str(), "");
}

TEST_F(CommandsTest, SubmitGivesUpAtTheTimeoutNamingTheCoordinator) {
  jobs_.submit_failures = 1 << 30;
  config_.timeout = absl::Milliseconds(300);
  EXPECT_EQ(Submit(kSpec), kExitError);
  EXPECT_THAT(err_.str(), StartsWith(absl::StrCat("vjepactl: UNAVAILABLE: coordinator ",
                                                  config_.coordinator, ": SubmitJob: gave up")));
  EXPECT_THAT(err_.str(), HasSubstr("coordinator is starting\n"));
  EXPECT_GT(jobs_.submits.size(), 1u);
  EXPECT_EQ(out_.str(), "");
}

TEST_F(CommandsTest, SubmitWithAGivenRequestIdIsDeduplicated) {
  SubmitOptions options;
  options.file = WriteFile("job.yaml", kSpec);
  options.request_id = "my-key-1";
  ASSERT_EQ(Submit(options), kExitOk);
  EXPECT_EQ(out_.str(), "job/j-1 submitted\n");
  ASSERT_EQ(Submit(options), kExitOk);
  EXPECT_EQ(out_.str(), "job/j-1 submitted (deduplicated)\n");
  EXPECT_EQ(jobs_.submits[1].client_request_id(), "my-key-1");
  EXPECT_EQ(jobs_.job_count(), 1u);

  config_.output = OutputFormat::kYaml;
  ASSERT_EQ(Submit(options), kExitOk);
  EXPECT_THAT(out_.str(), StartsWith("id: j-1\n"));
  EXPECT_THAT(out_.str(), HasSubstr("\ndeduplicated: true\n"));
}

TEST_F(CommandsTest, SubmitConvertsAReferenceConfigThenAppliesOverrides) {
  const std::string reference = R"(data:
  datasets: [/data/k710.csv]
  batch_size: 4
model:
  model_name: vit_tiny
optimization:
  epochs: 10
  ipe: 30
  warmup: 1
  lr: 0.001
meta:
  seed: 7
logging:
  write_tag: small-run
)";
  SubmitOptions options;
  options.file = WriteFile("vit_tiny.yaml", reference);
  options.from_reference_config = true;
  options.overrides = {"resources.trainers=2"};
  ASSERT_EQ(Submit(options), kExitOk) << err_.str();
  auto imported = spec::ImportReferenceConfig(reference);
  ASSERT_TRUE(imported.ok()) << imported.status();
  auto expected = spec::ParseJobSpec(*imported, {"resources.trainers=2"});
  ASSERT_TRUE(expected.ok()) << expected.status();
  EXPECT_EQ(expected->resources.trainers, 2);
  EXPECT_EQ(expected->seed, 7);
  ASSERT_EQ(jobs_.submits.size(), 1u);
  EXPECT_EQ(jobs_.submits[0].spec_yaml(), spec::ToYaml(*expected));

  // Without the flag the same file is not a job spec.
  options.from_reference_config = false;
  EXPECT_EQ(Submit(options), kExitError);
  EXPECT_THAT(err_.str(), StartsWith("vjepactl: INVALID_ARGUMENT: "));
  EXPECT_EQ(jobs_.submits.size(), 1u);
}

TEST_F(CommandsTest, SubmitReadsStdin) {
  SubmitOptions options;
  options.file = "-";
  ASSERT_EQ(Submit(options, kSpec), kExitOk) << err_.str();
  ASSERT_EQ(jobs_.submits.size(), 1u);
  EXPECT_THAT(jobs_.submits[0].spec_yaml(), HasSubstr("name: tiny"));
}

TEST_F(CommandsTest, SubmitValidatesLocallyWithTheSpecLibrarysMessage) {
  const std::string bad = absl::StrCat(kSpec, "  lr:\n    peak: -1\n");
  const auto expected = spec::ParseJobSpec(bad);
  ASSERT_FALSE(expected.ok());
  EXPECT_EQ(Submit(bad), kExitError);
  EXPECT_EQ(err_.str(),
            absl::StrCat("vjepactl: INVALID_ARGUMENT: ", expected.status().message(), "\n"));
  EXPECT_THAT(err_.str(), HasSubstr("optim.lr.peak"));
  EXPECT_EQ(out_.str(), "");

  // Overrides are checked like the file.
  const auto bad_set = spec::ParseJobSpec(kSpec, {"optim.lr.peak=-1"});
  ASSERT_FALSE(bad_set.ok());
  EXPECT_EQ(Submit(kSpec, {"optim.lr.peak=-1"}), kExitError);
  EXPECT_EQ(err_.str(),
            absl::StrCat("vjepactl: INVALID_ARGUMENT: ", bad_set.status().message(), "\n"));
  EXPECT_TRUE(jobs_.submits.empty());
}

TEST_F(CommandsTest, SubmitReportsUnreadableAndOversizedFiles) {
  SubmitOptions options;
  options.file = (dir_ / "missing.yaml").string();
  EXPECT_EQ(Submit(options), kExitError);
  EXPECT_EQ(err_.str(), absl::StrCat("vjepactl: NOT_FOUND: ", options.file,
                                     ": cannot open: No such file or directory\n"));

  options.file = WriteFile("huge.yaml", std::string(spec::kMaxSpecBytes + 1, '#'));
  EXPECT_EQ(Submit(options), kExitError);
  EXPECT_THAT(err_.str(), StartsWith("vjepactl: RESOURCE_EXHAUSTED: "));
  EXPECT_TRUE(jobs_.submits.empty());
}

TEST_F(CommandsTest, ServerErrorsPrintCodeAndMessageAndExitOne) {
  EXPECT_EQ(Run([&](std::ostream& out, std::ostream& err) {
              return DescribeJob(config_, "j-123", job_stub_.get(), out, err);
            }),
            kExitError);
  EXPECT_EQ(err_.str(), "vjepactl: NOT_FOUND: job j-123 not found\n");
  EXPECT_EQ(out_.str(), "");

  const std::string done = jobs_.Add("done", v1::SUCCEEDED);
  EXPECT_EQ(Run([&](std::ostream& out, std::ostream& err) {
              return CancelJob(config_, done, "", job_stub_.get(), out, err);
            }),
            kExitError);
  EXPECT_EQ(err_.str(), "vjepactl: FAILED_PRECONDITION: job j-1 already ended SUCCEEDED\n");
}

TEST_F(CommandsTest, UnreachableCoordinatorIsNamed) {
  FakeJobService unused;
  rpc::RpcServer closed(rpc::ServerOptions{}, {&unused});
  ASSERT_TRUE(closed.Start().ok());
  const std::string address = absl::StrCat("127.0.0.1:", closed.BoundPort());
  closed.Stop(absl::ZeroDuration());
  closed.Wait();
  auto channel = rpc::MakeChannel({address});
  ASSERT_TRUE(channel.ok());
  auto stub = v1::JobService::NewStub(*channel);
  config_.coordinator = address;
  config_.timeout = absl::Milliseconds(300);
  EXPECT_EQ(Run([&](std::ostream& out, std::ostream& err) {
              return GetJobs(config_, stub.get(), out, err);
            }),
            kExitError);
  EXPECT_THAT(err_.str(),
              StartsWith(absl::StrCat("vjepactl: UNAVAILABLE: coordinator ", address, ": ")));
}

TEST_F(CommandsTest, GetJobsPagesThroughEveryJob) {
  config_.output = OutputFormat::kJson;
  auto get = [&] {
    return Run([&](std::ostream& out, std::ostream& err) {
      return GetJobs(config_, job_stub_.get(), out, err);
    });
  };
  ASSERT_EQ(get(), kExitOk);
  EXPECT_EQ(out_.str(), "[]\n");
  config_.output = OutputFormat::kYaml;
  ASSERT_EQ(get(), kExitOk);
  EXPECT_EQ(out_.str(), "[]\n");
  config_.output = OutputFormat::kTable;
  ASSERT_EQ(get(), kExitOk);
  EXPECT_EQ(out_.str(), "ID   NAME   STATE   OWNER   KIND   STEP   AGE\n");

  const v1::JobState states[] = {v1::PENDING, v1::RUNNING, v1::SUCCEEDED, v1::FAILED,
                                 v1::CANCELLED};
  for (int i = 0; i < 5; ++i) jobs_.Add(absl::StrCat("run-", i), states[i]);
  jobs_.list_calls = 0;
  config_.output = OutputFormat::kJson;
  ASSERT_EQ(get(), kExitOk) << err_.str();
  EXPECT_EQ(jobs_.list_calls, 3);
  const Json list = OutJson();
  ASSERT_TRUE(list.is_array());
  ASSERT_EQ(list.size(), 5u);
  std::vector<std::string> ids;
  for (const Json& job : list) {
    ids.push_back(job["id"]);
    EXPECT_TRUE(job["owner"] == "alice");
  }
  EXPECT_THAT(ids, ElementsAre("j-1", "j-2", "j-3", "j-4", "j-5"));
  EXPECT_EQ(list[2]["state"], "SUCCEEDED");
  EXPECT_EQ(list[4]["state"], "CANCELLED");
  EXPECT_EQ(list[0]["create_time"], "2024-05-01T12:34:56Z");

  config_.output = OutputFormat::kTable;
  ASSERT_EQ(get(), kExitOk);
  std::vector<std::string> lines = absl::StrSplit(out_.str(), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 6u);
  EXPECT_EQ(lines[0], "ID    NAME    STATE       OWNER   KIND       STEP    AGE");
  EXPECT_EQ(lines[3], "j-3   run-2   SUCCEEDED   alice   pretrain   0/100   5m");
}

TEST_F(CommandsTest, GetWorkers) {
  v1::Worker w;
  w.set_id("w-1");
  w.set_name("trainer-0");
  w.set_kind(v1::TRAINER);
  w.set_state(v1::ALIVE);
  w.set_advertise_address("127.0.0.1:7000");
  w.set_last_heartbeat_ms(kT0);
  w.set_cpus(2);
  w.set_device("cpu");
  workers_.workers = {w};
  config_.output = OutputFormat::kJson;
  ASSERT_EQ(Run([&](std::ostream& out, std::ostream& err) {
              return GetWorkers(config_, worker_stub_.get(), out, err);
            }),
            kExitOk);
  const Json list = OutJson();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["id"], "w-1");
  EXPECT_EQ(list[0]["kind"], "TRAINER");
  EXPECT_EQ(list[0]["state"], "ALIVE");
  EXPECT_EQ(list[0]["last_heartbeat"], "2024-05-01T12:34:56Z");
  EXPECT_EQ(list[0]["cpus"], 2);
}

TEST_F(CommandsTest, DescribeShowsTheJobAndItsSpecAsAnObject) {
  const std::string id = jobs_.Add("tiny", v1::RUNNING);
  config_.output = OutputFormat::kJson;
  ASSERT_EQ(Run([&](std::ostream& out, std::ostream& err) {
              return DescribeJob(config_, id, job_stub_.get(), out, err);
            }),
            kExitOk);
  const Json job = OutJson();
  EXPECT_EQ(job["id"], id);
  EXPECT_EQ(job["state"], "RUNNING");
  EXPECT_EQ(job["spec"]["name"], "tiny");
  EXPECT_EQ(job["spec"]["optim"]["steps"], 100);
  EXPECT_EQ(job["spec"]["dataset"]["manifest"], "/data/manifest.txt");

  config_.output = OutputFormat::kTable;
  ASSERT_EQ(Run([&](std::ostream& out, std::ostream& err) {
              return DescribeJob(config_, id, job_stub_.get(), out, err);
            }),
            kExitOk);
  EXPECT_THAT(out_.str(), HasSubstr("State:              RUNNING\n"));
  EXPECT_THAT(out_.str(), HasSubstr("Spec:\n  name: tiny\n"));
}

TEST_F(CommandsTest, CancelPrintsTheJob) {
  const std::string id = jobs_.Add("tiny", v1::RUNNING);
  ASSERT_EQ(Run([&](std::ostream& out, std::ostream& err) {
              return CancelJob(config_, id, "not needed", job_stub_.get(), out, err);
            }),
            kExitOk);
  EXPECT_EQ(out_.str(), "job/j-1 cancelled\n");
  config_.output = OutputFormat::kJson;
  ASSERT_EQ(Run([&](std::ostream& out, std::ostream& err) {
              return CancelJob(config_, id, "", job_stub_.get(), out, err);
            }),
            kExitOk);
  EXPECT_EQ(OutJson()["state"], "CANCELLED");
  EXPECT_EQ(OutJson()["id"], id);
}

class WatchTest : public CommandsTest {
 protected:
  void SetUp() override {
    CommandsTest::SetUp();
    id_ = jobs_.Add("tiny", v1::SUCCEEDED);
    jobs_.AddEvent(id_, "submitted", v1::PENDING, 0, "submitted by alice");
    jobs_.AddEvent(id_, "state", v1::RUNNING, 0, "2 trainers");
    jobs_.AddEvent(id_, "progress", v1::RUNNING, 50, "loss 0.5");
    jobs_.AddEvent(id_, "state", v1::SUCCEEDED, 100, "final checkpoint committed");
  }
  int Watch(int64_t after_seq = 0) {
    return Run([&](std::ostream& out, std::ostream& err) {
      return WatchJob(config_, {id_, after_seq}, job_stub_.get(), out, err);
    });
  }
  std::vector<std::string> OutLines() {
    return absl::StrSplit(out_.str(), '\n', absl::SkipEmpty());
  }
  std::string id_;
};

TEST_F(WatchTest, JsonPrintsOneObjectPerLineAndExitsZeroAtTheEnd) {
  config_.output = OutputFormat::kJson;
  ASSERT_EQ(Watch(), kExitOk) << err_.str();
  const auto lines = OutLines();
  ASSERT_EQ(lines.size(), 4u);
  const Json first = Json::parse(lines[0]);
  EXPECT_EQ(first["seq"], 1);
  EXPECT_EQ(first["type"], "submitted");
  EXPECT_EQ(first["state"], "PENDING");
  EXPECT_EQ(first["time"], "2024-05-01T12:34:57Z");
  const Json last = Json::parse(lines[3]);
  EXPECT_EQ(last["state"], "SUCCEEDED");
  EXPECT_EQ(last["step"], 100);
  EXPECT_EQ(last["message"], "final checkpoint committed");
}

TEST_F(WatchTest, TableAndYaml) {
  ASSERT_EQ(Watch(2), kExitOk);
  EXPECT_THAT(OutLines(),
              ElementsAre(WatchHeaderLine(),
                          "2024-05-01T12:34:59Z      3  progress    RUNNING           50  loss 0.5",
                          "2024-05-01T12:35:00Z      4  state       SUCCEEDED        100  final "
                          "checkpoint committed"));
  config_.output = OutputFormat::kYaml;
  ASSERT_EQ(Watch(3), kExitOk);
  EXPECT_EQ(out_.str(),
            "---\nseq: 4\ntime: \"2024-05-01T12:35:00Z\"\ntype: state\nstate: SUCCEEDED\n"
            "step: 100\nmessage: final checkpoint committed\n");
}

TEST_F(WatchTest, ResumesAfterTheLastEventWhenTheStreamBreaks) {
  jobs_.watch_cuts = 2;
  config_.output = OutputFormat::kJson;
  ASSERT_EQ(Watch(), kExitOk) << err_.str();
  EXPECT_THAT(jobs_.watch_after_seqs, ElementsAre(0, 1, 2));
  std::vector<int64_t> seqs;
  for (const std::string& line : OutLines()) seqs.push_back(Json::parse(line)["seq"]);
  EXPECT_THAT(seqs, ElementsAre(1, 2, 3, 4));
}

TEST_F(WatchTest, ReopensAStreamThatReachedItsDeadlineWhileTheCoordinatorAnswers) {
  jobs_.watch_stalls = 2;
  config_.timeout = absl::Milliseconds(200);
  config_.output = OutputFormat::kJson;
  ASSERT_EQ(Watch(), kExitOk) << err_.str();
  EXPECT_EQ(jobs_.get_calls, 2);
  EXPECT_EQ(OutLines().size(), 4u);
}

TEST_F(WatchTest, UnknownJob) {
  id_ = "j-404";
  EXPECT_EQ(Watch(), kExitError);
  EXPECT_EQ(err_.str(), "vjepactl: NOT_FOUND: job j-404 not found\n");
}

}  // namespace
}  // namespace vjepa::vjepactl
