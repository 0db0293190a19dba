#include "cli/vjepactl/format.h"

#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vjepa::vjepactl {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr int64_t kMay1 = 1714566896000;  // 2024-05-01T12:34:56Z

v1::Job SampleJob() {
  v1::Job job;
  job.set_id("j-3f9c2a81d0");
  job.set_name("tiny-run");
  job.set_owner("alice");
  job.set_state(v1::RUNNING);
  job.set_kind("pretrain");
  job.set_step(120);
  job.set_total_steps(1000);
  job.set_generation(2);
  job.set_trainers(2);
  job.set_dataworkers(3);
  job.set_message("training");
  job.set_create_time_ms(kMay1);
  job.set_update_time_ms(kMay1 + 61'500);
  job.set_client_request_id("0123abcd");
  job.set_spec_yaml("name: tiny-run\noptim:\n  steps: 1000\n");
  return job;
}

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

TEST(Format, ParsesOutputFormats) {
  OutputFormat f = OutputFormat::kTable;
  EXPECT_TRUE(ParseOutputFormat("json", &f));
  EXPECT_EQ(f, OutputFormat::kJson);
  EXPECT_TRUE(ParseOutputFormat("yaml", &f));
  EXPECT_EQ(f, OutputFormat::kYaml);
  EXPECT_TRUE(ParseOutputFormat("table", &f));
  EXPECT_EQ(f, OutputFormat::kTable);
  EXPECT_FALSE(ParseOutputFormat("wide", &f));
}

TEST(Format, Rfc3339IsUtcWholeSecondsAndEmptyForNever) {
  EXPECT_EQ(Rfc3339(kMay1), "2024-05-01T12:34:56Z");
  EXPECT_EQ(Rfc3339(kMay1 + 999), "2024-05-01T12:34:56Z");
  EXPECT_EQ(Rfc3339(0), "");
}

TEST(Format, JobJsonHasStringIdsAndBareStateNames) {
  const Json j = JobToJson(SampleJob());
  EXPECT_EQ(j["id"], "j-3f9c2a81d0");
  EXPECT_TRUE(j["id"].is_string());
  EXPECT_EQ(j["name"], "tiny-run");
  EXPECT_EQ(j["state"], "RUNNING");
  EXPECT_EQ(j["owner"], "alice");
  EXPECT_EQ(j["kind"], "pretrain");
  EXPECT_EQ(j["step"], 120);
  EXPECT_EQ(j["total_steps"], 1000);
  EXPECT_EQ(j["generation"], 2);
  EXPECT_EQ(j["trainers"], 2);
  EXPECT_EQ(j["dataworkers"], 3);
  EXPECT_EQ(j["message"], "training");
  EXPECT_EQ(j["create_time"], "2024-05-01T12:34:56Z");
  EXPECT_EQ(j["update_time"], "2024-05-01T12:35:57Z");
  EXPECT_EQ(j["client_request_id"], "0123abcd");
  EXPECT_FALSE(j.contains("spec_yaml"));
  EXPECT_EQ(j.begin().key(), "id");

  for (auto [state, name] :
       std::vector<std::pair<v1::JobState, std::string>>{{v1::PENDING, "PENDING"},
                                                         {v1::SUCCEEDED, "SUCCEEDED"},
                                                         {v1::FAILED, "FAILED"},
                                                         {v1::CANCELLED, "CANCELLED"},
                                                         {v1::RESTARTING, "RESTARTING"}}) {
    v1::Job job;
    job.set_state(state);
    EXPECT_EQ(JobToJson(job)["state"], name);
  }
  EXPECT_EQ(JobStateName(static_cast<v1::JobState>(42)), "42");
}

TEST(Format, WorkerAndEventJson) {
  v1::Worker w;
  w.set_id("w-1");
  w.set_name("host:0");
  w.set_incarnation(3);
  w.set_kind(v1::DATAWORKER);
  w.set_state(v1::LOST);
  w.set_advertise_address("10.0.0.5:7000");
  w.set_last_heartbeat_ms(kMay1);
  w.set_job_id("j-1");
  w.set_message("missed heartbeats");
  w.set_device("cpu");
  w.set_cpus(4);
  const Json j = WorkerToJson(w);
  EXPECT_EQ(j["id"], "w-1");
  EXPECT_EQ(j["name"], "host:0");
  EXPECT_EQ(j["incarnation"], 3);
  EXPECT_EQ(j["kind"], "DATAWORKER");
  EXPECT_EQ(j["state"], "LOST");
  EXPECT_EQ(j["advertise_address"], "10.0.0.5:7000");
  EXPECT_EQ(j["last_heartbeat"], "2024-05-01T12:34:56Z");
  EXPECT_EQ(j["job_id"], "j-1");
  EXPECT_EQ(j["message"], "missed heartbeats");
  EXPECT_EQ(j["device"], "cpu");
  EXPECT_EQ(j["cpus"], 4);
  w.set_kind(v1::TRAINER);
  w.set_state(v1::ALIVE);
  EXPECT_EQ(WorkerToJson(w)["kind"], "TRAINER");
  EXPECT_EQ(WorkerToJson(w)["state"], "ALIVE");
  w.set_state(v1::GONE);
  EXPECT_EQ(WorkerToJson(w)["state"], "GONE");

  v1::JobEvent e;
  e.set_seq(7);
  e.set_time_ms(kMay1);
  e.set_type("progress");
  e.set_state(v1::RUNNING);
  e.set_step(40);
  e.set_message("loss 0.42");
  EXPECT_EQ(JobEventToJson(e).dump(),
            R"({"seq":7,"time":"2024-05-01T12:34:56Z","type":"progress","state":"RUNNING",)"
            R"("step":40,"message":"loss 0.42"})");
}

TEST(Format, EmptyListsAreEmptyArraysInJsonAndYaml) {
  EXPECT_EQ(Json::array().dump(), "[]");
  EXPECT_EQ(JsonToYaml(Json::array()), "[]\n");
  EXPECT_EQ(JsonToYaml(Json::object()), "{}\n");
}

TEST(Format, YamlOfObjectsAndArrays) {
  Json list = Json::array();
  list.push_back(JobToJson(SampleJob()));
  const std::string yaml = JsonToYaml(list);
  EXPECT_THAT(yaml, HasSubstr("- id: j-3f9c2a81d0\n  name: tiny-run\n  state: RUNNING\n"));
  EXPECT_THAT(yaml, HasSubstr("  step: 120\n"));
  EXPECT_THAT(yaml, HasSubstr("  create_time: \"2024-05-01T12:34:56Z\"\n"));
  EXPECT_THAT(yaml, HasSubstr("  client_request_id: \"0123abcd\"\n"));
}

TEST(Format, YamlQuotesStringsThatReadAsOtherTypesAndRoundTrips) {
  const Json value = Json::parse(R"({
    "strings": ["123", "true", "False", "null", "~", "", "yes", "off", "1.5", "-2", ".inf",
                "2024-05-01", "1e3", "plain text", "a: b", "#hash", "- dash", "j-1"],
    "numbers": [0, -3, 9007199254740993, 0.5, 1e-05, 2.5e+20, 1.0],
    "bools": [true, false],
    "nothing": null,
    "nested": {"empty_list": [], "empty_map": {}, "list": [{"a": 1}, {"b": [2, 3]}]}
  })");
  const std::string yaml = JsonToYaml(value);
  EXPECT_THAT(yaml, HasSubstr("- \"123\"\n"));
  EXPECT_THAT(yaml, HasSubstr("- \"true\"\n"));
  EXPECT_THAT(yaml, HasSubstr("- \"\"\n"));
  EXPECT_THAT(yaml, HasSubstr("- plain text\n"));
  EXPECT_THAT(yaml, HasSubstr("- 1.0e-05\n"));
  EXPECT_THAT(yaml, HasSubstr("- 0.5\n"));
  EXPECT_THAT(yaml, HasSubstr("- true\n"));
  auto back = YamlToJson(yaml);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, value) << yaml;
}

TEST(Format, YamlToJsonTypesScalarsLikeYaml12) {
  auto j = YamlToJson(R"(
name: run-1
seed: 234
lr: 6.25e-4
ratio: .5
neg: -7
flag: true
off_flag: False
none: ~
empty:
quoted: "42"
single: '3.5'
tagged: !!str 12
hex: 0x1F
words: [a, b]
date: 2024-05-01
)");
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_EQ((*j)["name"], "run-1");
  EXPECT_EQ((*j)["seed"], 234);
  EXPECT_TRUE((*j)["seed"].is_number_integer());
  EXPECT_DOUBLE_EQ((*j)["lr"].get<double>(), 6.25e-4);
  EXPECT_DOUBLE_EQ((*j)["ratio"].get<double>(), 0.5);
  EXPECT_EQ((*j)["neg"], -7);
  EXPECT_EQ((*j)["flag"], true);
  EXPECT_EQ((*j)["off_flag"], false);
  EXPECT_TRUE((*j)["none"].is_null());
  EXPECT_TRUE((*j)["empty"].is_null());
  EXPECT_EQ((*j)["quoted"], "42");
  EXPECT_EQ((*j)["single"], "3.5");
  EXPECT_EQ((*j)["tagged"], "12");
  EXPECT_EQ((*j)["hex"], 31);
  EXPECT_EQ((*j)["words"], Json::array({"a", "b"}));
  EXPECT_EQ((*j)["date"], "2024-05-01");
  // Keys keep the document's order.
  EXPECT_EQ(j->begin().key(), "name");

  EXPECT_FALSE(YamlToJson("a: [1, 2").ok());
}

TEST(Format, HumanDurationsLikeKubectl) {
  EXPECT_EQ(HumanDuration(absl::Seconds(-5)), "0s");
  EXPECT_EQ(HumanDuration(absl::Seconds(45)), "45s");
  EXPECT_EQ(HumanDuration(absl::Seconds(119)), "119s");
  EXPECT_EQ(HumanDuration(absl::Seconds(192)), "3m12s");
  EXPECT_EQ(HumanDuration(absl::Minutes(4)), "4m");
  EXPECT_EQ(HumanDuration(absl::Minutes(17)), "17m");
  EXPECT_EQ(HumanDuration(absl::Minutes(303)), "5h3m");
  EXPECT_EQ(HumanDuration(absl::Hours(30)), "30h");
  EXPECT_EQ(HumanDuration(absl::Hours(52)), "2d4h");
  EXPECT_EQ(HumanDuration(absl::Hours(24 * 12)), "12d");
}

TEST(Format, TablesAlignColumnsUnderTheirHeaders) {
  EXPECT_EQ(RenderTable({"A", "LONGER", "C"}, {{"xxxxx", "", "z"}, {"y", "1", ""}}),
            "A       LONGER   C\n"
            "xxxxx   <none>   z\n"
            "y       1        <none>\n");
  EXPECT_EQ(RenderTable({"ID", "NAME"}, {}), "ID   NAME\n");
}

TEST(Format, JobsTable) {
  v1::Job other = SampleJob();
  other.set_id("j-2");
  other.set_name("a-much-longer-job-name");
  other.set_state(v1::SUCCEEDED);
  const absl::Time now = absl::FromUnixMillis(kMay1) + absl::Minutes(5);
  const std::string table = JobsTable({SampleJob(), other}, now);
  EXPECT_THAT(Lines(table),
              ElementsAre("ID             NAME                     STATE       OWNER   KIND       "
                          "STEP       AGE",
                          "j-3f9c2a81d0   tiny-run                 RUNNING     alice   pretrain   "
                          "120/1000   5m",
                          "j-2            a-much-longer-job-name   SUCCEEDED   alice   pretrain   "
                          "120/1000   5m"));
  EXPECT_EQ(JobsTable({}, now), "ID   NAME   STATE   OWNER   KIND   STEP   AGE\n");
}

TEST(Format, WorkersTable) {
  v1::Worker w;
  w.set_id("w-1");
  w.set_name("dw-0");
  w.set_kind(v1::DATAWORKER);
  w.set_state(v1::ALIVE);
  w.set_advertise_address("127.0.0.1:7001");
  w.set_last_heartbeat_ms(kMay1);
  const std::string table = WorkersTable({w}, absl::FromUnixMillis(kMay1) + absl::Seconds(3));
  EXPECT_THAT(
      Lines(table),
      ElementsAre("ID    NAME   KIND         STATE   ADDRESS          JOB      LAST-HEARTBEAT",
                  "w-1   dw-0   DATAWORKER   ALIVE   127.0.0.1:7001   <none>   3s ago"));
}

TEST(Format, WorkersTableShowsATrainersRankAndGeneration) {
  v1::Worker w;
  w.set_id("w-2");
  w.set_name("t-0");
  w.set_kind(v1::TRAINER);
  w.set_state(v1::ALIVE);
  w.set_job_id("j-1");
  w.set_rank(1);
  w.set_generation(2);
  w.set_last_heartbeat_ms(kMay1);
  const std::string table = WorkersTable({w}, absl::FromUnixMillis(kMay1) + absl::Seconds(3));
  EXPECT_THAT(table, HasSubstr("j-1 r1 g2"));
}

TEST(Format, DescribeTextIsAKeyValueBlockThenTheSpec) {
  const std::string text =
      DescribeJobText(SampleJob(), absl::FromUnixMillis(kMay1) + absl::Hours(2));
  EXPECT_THAT(text, HasSubstr("ID:                 j-3f9c2a81d0\n"));
  EXPECT_THAT(text, HasSubstr("State:              RUNNING\n"));
  EXPECT_THAT(text, HasSubstr("Step:               120/1000\n"));
  EXPECT_THAT(text, HasSubstr("Created:            2024-05-01T12:34:56Z (120m ago)\n"));
  EXPECT_THAT(text, HasSubstr("Client Request ID:  0123abcd\n"));
  EXPECT_THAT(text, HasSubstr("Spec:\n  name: tiny-run\n  optim:\n    steps: 1000\n"));
}

TEST(Format, ProbeJobsShowTheirResultsInTextAndJson) {
  v1::Job job = SampleJob();
  job.set_kind("probe");
  v1::JobRuntime* rt = job.mutable_runtime();
  rt->set_probe_checkpoint("j-1/400");
  rt->set_probe_checkpoint_step(400);
  rt->set_phase("done");
  rt->set_val_dataset_size(800);
  v1::ProbeResult* r = rt->add_probe_results();
  r->set_pooling("attentive");
  r->set_top1(0.4325);
  r->set_evaluated_on("val");
  r->set_samples(800);
  r->add_per_class_top1(0.5);
  r->add_per_class_top1(0.25);
  r->add_per_class_samples(400);
  r->add_per_class_samples(400);
  const std::string text = DescribeJobText(job, absl::FromUnixMillis(kMay1));
  EXPECT_THAT(text, HasSubstr("  Probed:        j-1/400 (step 400)\n"));
  EXPECT_THAT(text, HasSubstr("  Top-1 attentive: 0.4325 on 800 val samples"));
  EXPECT_THAT(text, HasSubstr("    per class: 0: 0.500, 1: 0.250\n"));
  const Json j = JobToJson(job);
  ASSERT_EQ(j["runtime"]["probe_results"].size(), 1u);
  EXPECT_EQ(j["runtime"]["probe_results"][0]["pooling"], "attentive");
  EXPECT_DOUBLE_EQ(j["runtime"]["probe_results"][0]["top1"].get<double>(), 0.4325);
  EXPECT_EQ(j["runtime"]["probe_results"][0]["per_class"][1]["samples"], 400);
  EXPECT_EQ(j["runtime"]["probe_checkpoint"], "j-1/400");
}

TEST(Format, WatchLines) {
  v1::JobEvent e;
  e.set_seq(3);
  e.set_time_ms(kMay1);
  e.set_type("state");
  e.set_state(v1::SUCCEEDED);
  e.set_step(1000);
  e.set_message("final checkpoint committed");
  EXPECT_EQ(WatchEventLine(e),
            "2024-05-01T12:34:56Z      3  state       SUCCEEDED       1000  final checkpoint "
            "committed");
  EXPECT_EQ(WatchHeaderLine(),
            "TIME                    SEQ  TYPE        STATE           STEP  MESSAGE");
}

}  // namespace
}  // namespace vjepa::vjepactl
