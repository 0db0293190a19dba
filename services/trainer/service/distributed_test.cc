// Two ranks in one process (two threads, a TCPStore and Gloo on 127.0.0.1) train the nano model
// with the gradient all-reduce: both end with identical parameters, equal to one trainer whose
// gradient each step is the average of the two per-rank batches' gradients.
#include "services/trainer/service/distributed.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/trainer/model/config.h"

namespace vjepa::trainer {
namespace {

using ::testing::HasSubstr;
using ::vjepa::testing::StatusIs;

constexpr int kWorld = 2;
constexpr int kSteps = 3;

// A port that was free a moment ago (TCPStore in LibTorch 1.13 needs a fixed port).
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

jepa::TrainerConfig NanoConfig() {
  jepa::TrainerConfig c;
  c.vit = *model::VitPreset("nano");
  c.predictor.width = 32;
  c.predictor.depth = 2;
  c.predictor.heads = 4;
  c.schedule.warmup_steps = 2;
  c.schedule.length = 50;
  c.schedule.lr_start = 1e-3;
  c.schedule.lr_peak = 1e-2;
  c.clip = 0.5;
  c.clip_start_update = 2;  // steps 2 and 3 clip the averaged gradients
  return c;
}

// Random tokens and two mask configs (context: the first k of a random order, sorted).
jepa::Batch RandomBatch(const model::VitConfig& v, int64_t batch, uint64_t seed) {
  torch::manual_seed(seed);
  jepa::Batch out;
  out.tokens = torch::randint(0, 256, {batch, v.num_tokens(), v.token_values()}, torch::kUInt8);
  for (int64_t k : {3, 5}) {
    std::vector<torch::Tensor> ctx, tgt;
    for (int64_t b = 0; b < batch; ++b) {
      torch::Tensor order = torch::randperm(v.num_tokens(), torch::kInt64);
      ctx.push_back(std::get<0>(order.narrow(0, 0, k).sort()));
      tgt.push_back(std::get<0>(order.narrow(0, k, v.num_tokens() - k).sort()));
    }
    out.masks.push_back({torch::stack(ctx), torch::stack(tgt)});
  }
  return out;
}

std::unique_ptr<jepa::Trainer> MakeTrainer() {
  torch::manual_seed(11);
  auto t = jepa::Trainer::Create(NanoConfig());
  EXPECT_TRUE(t.ok()) << t.status();
  return std::move(*t);
}

void ExpectSameState(const jepa::NamedTensors& a, const jepa::NamedTensors& b, double atol,
                     const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].first, b[i].first) << what;
    const torch::Tensor x = a[i].second.to(torch::kDouble), y = b[i].second.to(torch::kDouble);
    EXPECT_TRUE(torch::allclose(x, y, /*rtol=*/0, atol))
        << what << ": " << a[i].first << " differs by " << (x - y).abs().max().item<double>();
  }
}

class DistributedTest : public ::testing::Test {
 protected:
  void SetUp() override { torch::set_num_threads(1); }
};

TEST_F(DistributedTest, TwoRanksMatchOneTrainerAveragingTheirGradients) {
  const model::VitConfig vit = NanoConfig().vit;
  std::array<std::array<jepa::Batch, kSteps>, kWorld> batches;
  for (int r = 0; r < kWorld; ++r) {
    for (int s = 0; s < kSteps; ++s) batches[r][s] = RandomBatch(vit, 2, 100 + 10 * s + r);
  }
  std::array<std::unique_ptr<jepa::Trainer>, kWorld> ranks;
  for (auto& t : ranks) t = MakeTrainer();
  {
    // Rank 1 starts elsewhere: the broadcast from rank 0 must give both the same start.
    torch::NoGradGuard no_grad;
    for (auto& p : ranks[1]->encoder()->parameters()) p.add_(0.25);
  }

  const int port = FreePort();
  ASSERT_GT(port, 0);
  std::array<absl::Status, kWorld> results;
  // Per rank and step: the gradients the optimizer got.
  std::array<std::vector<std::vector<torch::Tensor>>, kWorld> averaged;
  std::vector<std::thread> threads;
  for (int r = 0; r < kWorld; ++r) {
    threads.emplace_back([&, r] {
      results[r] = [&]() -> absl::Status {
        DistributedOptions o;
        o.job_id = "job-a";
        o.generation = 3;
        o.rank = r;
        o.world_size = kWorld;
        o.store_address = absl::StrCat("127.0.0.1:", port);
        o.bind_host = "127.0.0.1";
        o.timeout = absl::Seconds(30);
        absl::StatusOr<std::unique_ptr<ProcessGroup>> group = ProcessGroup::Join(o);
        if (!group.ok()) return group.status();
        std::vector<torch::Tensor> state;
        for (auto& [name, t] : ranks[r]->State()) state.push_back(t);
        if (absl::Status s = (*group)->Broadcast(state, 0); !s.ok()) return s;
        jepa::Trainer::GradientHook all_reduce = GradientAllReduceHook(group->get());
        ranks[r]->SetGradientHook([&, r, all_reduce](const std::vector<torch::Tensor>& params) {
          core::Status s = all_reduce(params);
          std::vector<torch::Tensor> grads;
          for (const torch::Tensor& p : params) grads.push_back(p.grad().clone());
          averaged[r].push_back(std::move(grads));
          return s;
        });
        for (int s = 0; s < kSteps; ++s) {
          auto stats = ranks[r]->Step(batches[r][s]);
          if (!stats.ok()) return absl::InternalError(stats.status().ToString());
        }
        ranks[r]->SetGradientHook(nullptr);
        return (*group)->Barrier();
      }();
    });
  }
  for (auto& t : threads) t.join();
  for (int r = 0; r < kWorld; ++r) ASSERT_OK(results[r]) << "rank " << r;

  // The reference: one trainer; each step, a helper with its state computes the gradient of
  // rank 1's batch, and the hook averages it with the gradient of rank 0's.
  std::unique_ptr<jepa::Trainer> reference = MakeTrainer();
  std::unique_ptr<jepa::Trainer> helper = MakeTrainer();
  std::vector<torch::Tensor> other;
  std::vector<std::vector<torch::Tensor>> reference_grads;
  helper->SetGradientHook([&](const std::vector<torch::Tensor>& params) {
    other.clear();
    for (const torch::Tensor& p : params) other.push_back(p.grad().clone());
    return core::UnavailableError("gradient taken");
  });
  reference->SetGradientHook([&](const std::vector<torch::Tensor>& params) {
    torch::NoGradGuard no_grad;
    if (other.size() != params.size()) return core::InternalError("no gradient to average");
    std::vector<torch::Tensor> grads;
    for (size_t i = 0; i < params.size(); ++i) {
      params[i].grad().add_(other[i]).div_(kWorld);
      grads.push_back(params[i].grad().clone());
    }
    reference_grads.push_back(std::move(grads));
    return core::OkStatus();
  });
  for (int s = 0; s < kSteps; ++s) {
    ASSERT_TRUE(helper->LoadState(reference->State(), reference->updates()).ok());
    auto taken = helper->Step(batches[1][s]);
    ASSERT_EQ(taken.status().message(), "gradient taken");
    ASSERT_TRUE(reference->Step(batches[0][s]).ok());
  }
  EXPECT_EQ(ranks[0]->updates(), kSteps);
  // Each step's averaged gradients (before clipping) are the same on both ranks and equal the
  // reference's average.
  ASSERT_EQ(reference_grads.size(), static_cast<size_t>(kSteps));
  for (int r = 0; r < kWorld; ++r) {
    ASSERT_EQ(averaged[r].size(), static_cast<size_t>(kSteps));
    for (int s = 0; s < kSteps; ++s) {
      ASSERT_EQ(averaged[r][s].size(), reference_grads[s].size());
      for (size_t i = 0; i < reference_grads[s].size(); ++i) {
        EXPECT_TRUE(torch::equal(averaged[r][s][i], averaged[0][s][i]));
        EXPECT_TRUE(torch::allclose(averaged[r][s][i], reference_grads[s][i], 0, 1e-6))
            << "rank " << r << ", step " << s << ", parameter " << i;
      }
    }
  }
  ExpectSameState(ranks[0]->State(), ranks[1]->State(), 0, "rank 0 vs rank 1");
  ExpectSameState(ranks[0]->State(), reference->State(), 1e-5, "rank 0 vs one trainer");
  // The runs did train: the parameters moved from the start.
  const jepa::NamedTensors start = MakeTrainer()->State(), end = ranks[0]->State();
  double moved = 0;
  for (size_t i = 0; i < start.size(); ++i) {
    moved = std::max(moved, (end[i].second - start[i].second).abs().max().item<double>());
  }
  EXPECT_GT(moved, 1e-3);
}

TEST_F(DistributedTest, JoinChecksItsOptions) {
  DistributedOptions o;
  o.job_id = "j";
  o.rank = 2;
  o.world_size = 2;
  o.store_address = "127.0.0.1:1234";
  EXPECT_THAT(ProcessGroup::Join(o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("rank 2 outside [0, 2)")));
  o.rank = 0;
  o.store_address = "127.0.0.1";
  EXPECT_THAT(ProcessGroup::Join(o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not HOST:PORT")));
  if (!NcclAvailable()) {
    o.store_address = "127.0.0.1:1234";
    o.backend = Backend::kNccl;
    EXPECT_THAT(ProcessGroup::Join(o), StatusIs(absl::StatusCode::kFailedPrecondition,
                                                HasSubstr("this build has no NCCL")));
  }
}

TEST_F(DistributedTest, AMissingPeerTimesOut) {
  // World size 2 but only rank 0 joins: the rendezvous fails after the timeout, not 30 minutes.
  DistributedOptions o;
  o.job_id = "job-a";
  o.world_size = 2;
  o.store_address = absl::StrCat("127.0.0.1:", FreePort());
  o.bind_host = "127.0.0.1";
  o.timeout = absl::Seconds(1);
  absl::StatusOr<std::unique_ptr<ProcessGroup>> group = ProcessGroup::Join(o);
  EXPECT_FALSE(group.ok());
  EXPECT_THAT(group.status().message(), HasSubstr("job-a/0/"));
}

}  // namespace
}  // namespace vjepa::trainer
