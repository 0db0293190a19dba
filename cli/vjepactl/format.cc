#include "cli/vjepactl/format.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "yaml-cpp/yaml.h"

namespace vjepa::vjepactl {
namespace {

template <typename Enum>
std::string EnumName(Enum value, const std::string& name) {
  return name.empty() ? std::to_string(static_cast<int>(value)) : name;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool AllDigits(std::string_view s, size_t from) {
  if (from >= s.size()) return false;
  for (size_t i = from; i < s.size(); ++i) {
    if (!IsDigit(s[i])) return false;
  }
  return true;
}

// YAML 1.2 core schema words (and YAML 1.1's yes/no/on/off, which PyYAML still reads as bools:
// a string spelled like them is quoted on output).
bool IsNullWord(std::string_view s) {
  return s == "~" || s == "null" || s == "Null" || s == "NULL";
}
bool IsTrueWord(std::string_view s) { return s == "true" || s == "True" || s == "TRUE"; }
bool IsFalseWord(std::string_view s) { return s == "false" || s == "False" || s == "FALSE"; }
bool IsYaml11BoolWord(std::string_view s) {
  std::string lower(s);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower == "yes" || lower == "no" || lower == "on" || lower == "off";
}

// [-+]?[0-9]+
bool IsDecimalInt(std::string_view s) {
  const size_t from = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  return AllDigits(s, from);
}

// [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
bool IsDecimalFloat(std::string_view s) {
  size_t i = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  size_t int_digits = 0, frac_digits = 0;
  while (i < s.size() && IsDigit(s[i])) ++i, ++int_digits;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && IsDigit(s[i])) ++i, ++frac_digits;
  }
  if (int_digits == 0 && frac_digits == 0) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    return AllDigits(s, i);
  }
  return i == s.size();
}

Json ScalarToJson(const YAML::Node& node) {
  const std::string& text = node.Scalar();
  const std::string& tag = node.Tag();
  // "!" marks a quoted scalar; an explicit !!str keeps the text too.
  if (tag == "!" || absl::EndsWith(tag, ":str")) return text;
  if (IsNullWord(text) || text.empty()) return nullptr;
  if (IsTrueWord(text)) return true;
  if (IsFalseWord(text)) return false;
  if (IsDecimalInt(text)) {
    int64_t v = 0;
    if (absl::SimpleAtoi(text, &v)) return v;
  }
  if (absl::StartsWith(text, "0x") && text.size() > 2) {
    int64_t v = 0;
    if (absl::SimpleHexAtoi(text.substr(2), &v)) return v;
  }
  if (IsDecimalFloat(text)) {
    double v = 0;
    if (absl::SimpleAtod(text, &v)) return v;
  }
  return text;
}

Json NodeToJson(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      Json out = Json::object();
      for (const auto& kv : node) out[kv.first.Scalar()] = NodeToJson(kv.second);
      return out;
    }
    case YAML::NodeType::Sequence: {
      Json out = Json::array();
      for (const auto& item : node) out.push_back(NodeToJson(item));
      return out;
    }
    case YAML::NodeType::Scalar:
      return ScalarToJson(node);
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      break;
  }
  return nullptr;
}

// Whether a YAML reader would take the plain text `s` for something other than a string.
bool NeedsQuotes(std::string_view s) {
  if (s.empty() || IsNullWord(s) || IsTrueWord(s) || IsFalseWord(s) || IsYaml11BoolWord(s)) {
    return true;
  }
  // Numbers, dates, sexagesimals, .inf/.nan and their look-alikes.
  if (IsDigit(s[0]) || s[0] == '.') return true;
  return (s[0] == '-' || s[0] == '+') && s.size() > 1 && (IsDigit(s[1]) || s[1] == '.');
}

// nlohmann's shortest round-trip text, with a '.' in the mantissa so that YAML 1.1 readers
// (PyYAML) see a float in "1.0e-05" where "1e-05" would be a string to them.
std::string FloatText(const Json& v) {
  std::string text = v.dump();
  if (text == "null") return text;  // inf or nan
  if (text.find('.') == std::string::npos) {
    const size_t e = text.find_first_of("eE");
    text.insert(e == std::string::npos ? text.size() : e, ".0");
  }
  return text;
}

void Emit(YAML::Emitter& out, const Json& v) {
  switch (v.type()) {
    case Json::value_t::object:
      if (v.empty()) {
        out << YAML::Flow << YAML::BeginMap << YAML::EndMap;
        return;
      }
      out << YAML::BeginMap;
      for (const auto& [key, value] : v.items()) {
        out << YAML::Key;
        if (NeedsQuotes(key)) out << YAML::DoubleQuoted;
        out << key << YAML::Value;
        Emit(out, value);
      }
      out << YAML::EndMap;
      return;
    case Json::value_t::array:
      if (v.empty()) {
        out << YAML::Flow << YAML::BeginSeq << YAML::EndSeq;
        return;
      }
      out << YAML::BeginSeq;
      for (const auto& item : v) Emit(out, item);
      out << YAML::EndSeq;
      return;
    case Json::value_t::string: {
      const std::string& s = v.get_ref<const std::string&>();
      if (NeedsQuotes(s)) out << YAML::DoubleQuoted;
      out << s;
      return;
    }
    case Json::value_t::boolean:
      out << v.get<bool>();
      return;
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
      out << v.dump();
      return;
    case Json::value_t::number_float:
      out << FloatText(v);
      return;
    case Json::value_t::null:
    case Json::value_t::binary:
    case Json::value_t::discarded:
      out << YAML::Null;
      return;
  }
}

std::string AgeSince(int64_t unix_ms, absl::Time now) {
  if (unix_ms <= 0) return "";
  return HumanDuration(now - absl::FromUnixMillis(unix_ms));
}

}  // namespace

bool ParseOutputFormat(std::string_view text, OutputFormat* format) {
  if (text == "table") {
    *format = OutputFormat::kTable;
  } else if (text == "json") {
    *format = OutputFormat::kJson;
  } else if (text == "yaml") {
    *format = OutputFormat::kYaml;
  } else {
    return false;
  }
  return true;
}

std::string Rfc3339(int64_t unix_ms) {
  if (unix_ms == 0) return "";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixMillis(unix_ms), absl::UTCTimeZone());
}

std::string JobStateName(v1::JobState state) { return EnumName(state, v1::JobState_Name(state)); }
std::string WorkerStateName(v1::WorkerState state) {
  return EnumName(state, v1::WorkerState_Name(state));
}
std::string WorkerKindName(v1::WorkerKind kind) {
  return EnumName(kind, v1::WorkerKind_Name(kind));
}

bool IsTerminal(v1::JobState state) {
  return state == v1::SUCCEEDED || state == v1::FAILED || state == v1::CANCELLED;
}

Json ProbeResultsToJson(const v1::JobRuntime& rt) {
  Json results = Json::array();
  for (const v1::ProbeResult& r : rt.probe_results()) {
    Json per_class = Json::array();
    for (int c = 0; c < r.per_class_top1_size(); ++c) {
      per_class.push_back(
          Json{{"label", c},
               {"top1", r.per_class_top1(c)},
               {"samples", c < r.per_class_samples_size() ? r.per_class_samples(c) : int64_t{0}}});
    }
    results.push_back(Json{{"pooling", r.pooling()},
                           {"top1", r.top1()},
                           {"evaluated_on", r.evaluated_on()},
                           {"samples", r.samples()},
                           {"train_top1", r.train_top1()},
                           {"final_loss", r.final_loss()},
                           {"steps", r.steps()},
                           {"per_class", std::move(per_class)}});
  }
  return results;
}

Json RuntimeToJson(const v1::JobRuntime& rt) {
  Json quarantined = Json::array();
  for (const v1::QuarantinedVideo& q : rt.quarantined()) {
    quarantined.push_back(Json{{"sample", q.sample()},
                               {"path", q.path()},
                               {"reason", q.reason()},
                               {"detail", q.detail()}});
  }
  return Json{
      {"trainers", std::vector<std::string>(rt.trainers().begin(), rt.trainers().end())},
      {"dataworkers", std::vector<std::string>(rt.dataworkers().begin(), rt.dataworkers().end())},
      {"restarts", rt.restarts()},
      {"max_restarts", rt.max_restarts()},
      {"ledger", Json{{"total", rt.batches_total()},
                      {"pending", rt.batches_pending()},
                      {"leased", rt.batches_leased()},
                      {"delivered", rt.batches_delivered()},
                      {"committed", rt.batches_committed()},
                      {"batches_per_epoch", rt.batches_per_epoch()}}},
      {"dataset", Json{{"size", rt.dataset_size()},
                       {"manifest_sha256", rt.manifest_sha256()},
                       {"recipe_version", rt.recipe_version()},
                       {"quarantine_version", rt.quarantine_version()}}},
      {"quarantined", quarantined},
      {"data_wait_fraction", rt.data_wait_fraction()},
      {"clips_per_second", rt.clips_per_second()},
      {"dataworker_clips_per_core_second", rt.dataworker_clips_per_core_second()},
      {"dataworker_cores_needed", rt.dataworker_cores_needed()},
      {"loss", rt.loss()},
      {"lr", rt.lr()},
      {"c10d_store_address", rt.c10d_store_address()},
      {"target_feature_std", rt.target_feature_std()},
      {"val_dataset_size", rt.val_dataset_size()},
      {"val_manifest_sha256", rt.val_manifest_sha256()},
      {"probe_checkpoint", rt.probe_checkpoint()},
      {"probe_checkpoint_step", rt.probe_checkpoint_step()},
      {"phase", rt.phase()},
      {"probe_results", ProbeResultsToJson(rt)},
  };
}

Json JobToJson(const v1::Job& job) {
  return Json{
      {"id", job.id()},
      {"name", job.name()},
      {"state", JobStateName(job.state())},
      {"owner", job.owner()},
      {"kind", job.kind()},
      {"step", job.step()},
      {"total_steps", job.total_steps()},
      {"generation", job.generation()},
      {"trainers", job.trainers()},
      {"dataworkers", job.dataworkers()},
      {"message", job.message()},
      {"create_time", Rfc3339(job.create_time_ms())},
      {"update_time", Rfc3339(job.update_time_ms())},
      {"client_request_id", job.client_request_id()},
      {"runtime", RuntimeToJson(job.runtime())},
  };
}

Json WorkerToJson(const v1::Worker& worker) {
  return Json{
      {"id", worker.id()},
      {"name", worker.name()},
      {"incarnation", worker.incarnation()},
      {"kind", WorkerKindName(worker.kind())},
      {"state", WorkerStateName(worker.state())},
      {"advertise_address", worker.advertise_address()},
      {"register_time", Rfc3339(worker.register_time_ms())},
      {"last_heartbeat", Rfc3339(worker.last_heartbeat_ms())},
      {"job_id", worker.job_id()},
      {"rank", worker.rank()},
      {"generation", worker.generation()},
      {"clips_per_core_second", worker.clips_per_core_second()},
      {"message", worker.message()},
      {"device", worker.device()},
      {"cpus", worker.cpus()},
      {"principal", worker.principal()},
  };
}

Json JobEventToJson(const v1::JobEvent& event) {
  return Json{
      {"seq", event.seq()},   {"time", Rfc3339(event.time_ms())},
      {"type", event.type()}, {"state", JobStateName(event.state())},
      {"step", event.step()}, {"message", event.message()},
  };
}

absl::StatusOr<Json> YamlToJson(std::string_view yaml) {
  try {
    return NodeToJson(YAML::Load(std::string(yaml)));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("malformed YAML: ", e.what()));
  }
}

std::string JsonToYaml(const Json& value) {
  YAML::Emitter out;
  Emit(out, value);
  return absl::StrCat(out.c_str(), "\n");
}

std::string HumanDuration(absl::Duration d) {
  const int64_t seconds = absl::ToInt64Seconds(d);
  if (seconds < 0) return "0s";
  if (seconds < 120) return absl::StrCat(seconds, "s");
  const int64_t minutes = seconds / 60;
  if (minutes < 10) {
    return seconds % 60 == 0 ? absl::StrCat(minutes, "m")
                             : absl::StrCat(minutes, "m", seconds % 60, "s");
  }
  if (minutes < 3 * 60) return absl::StrCat(minutes, "m");
  const int64_t hours = minutes / 60;
  if (hours < 8) {
    return minutes % 60 == 0 ? absl::StrCat(hours, "h")
                             : absl::StrCat(hours, "h", minutes % 60, "m");
  }
  if (hours < 48) return absl::StrCat(hours, "h");
  const int64_t days = hours / 24;
  if (days < 8) {
    return hours % 24 == 0 ? absl::StrCat(days, "d") : absl::StrCat(days, "d", hours % 24, "h");
  }
  return absl::StrCat(days, "d");
}

std::string RenderTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows) {
  auto cell = [](const std::vector<std::string>& row, size_t i) -> std::string {
    if (i >= row.size() || row[i].empty()) return "<none>";
    return row[i];
  };
  std::vector<size_t> width(header.size(), 0);
  for (size_t i = 0; i < header.size(); ++i) {
    width[i] = header[i].size();
    for (const auto& row : rows) width[i] = std::max(width[i], cell(row, i).size());
  }
  std::string out;
  auto line = [&](const std::vector<std::string>& row, bool is_header) {
    std::string text;
    for (size_t i = 0; i < header.size(); ++i) {
      const std::string value = is_header ? header[i] : cell(row, i);
      absl::StrAppend(&text, value);
      if (i + 1 < header.size()) text.append(width[i] - value.size() + 3, ' ');
    }
    absl::StrAppend(&out, text, "\n");
  };
  line(header, true);
  for (const auto& row : rows) line(row, false);
  return out;
}

std::string JobsTable(const std::vector<v1::Job>& jobs, absl::Time now) {
  std::vector<std::vector<std::string>> rows;
  for (const v1::Job& job : jobs) {
    rows.push_back({job.id(), job.name(), JobStateName(job.state()), job.owner(), job.kind(),
                    absl::StrCat(job.step(), "/", job.total_steps()),
                    AgeSince(job.create_time_ms(), now)});
  }
  return RenderTable({"ID", "NAME", "STATE", "OWNER", "KIND", "STEP", "AGE"}, rows);
}

std::string WorkersTable(const std::vector<v1::Worker>& workers, absl::Time now) {
  std::vector<std::vector<std::string>> rows;
  for (const v1::Worker& w : workers) {
    const std::string age = AgeSince(w.last_heartbeat_ms(), now);
    // A trainer's place in its job: rank and generation.
    const std::string job = w.job_id().empty() || w.kind() != v1::TRAINER
                                ? w.job_id()
                                : absl::StrCat(w.job_id(), " r", w.rank(), " g", w.generation());
    rows.push_back({w.id(), w.name(), WorkerKindName(w.kind()), WorkerStateName(w.state()),
                    w.advertise_address(), job, age.empty() ? "" : age + " ago"});
  }
  return RenderTable({"ID", "NAME", "KIND", "STATE", "ADDRESS", "JOB", "LAST-HEARTBEAT"}, rows);
}

std::string DescribeJobText(const v1::Job& job, absl::Time now) {
  auto when = [&](int64_t ms) -> std::string {
    if (ms <= 0) return "<none>";
    return absl::StrCat(Rfc3339(ms), " (", AgeSince(ms, now), " ago)");
  };
  const std::vector<std::pair<std::string, std::string>> fields = {
      {"ID", job.id()},
      {"Name", job.name()},
      {"Owner", job.owner()},
      {"Kind", job.kind()},
      {"State", JobStateName(job.state())},
      {"Message", job.message()},
      {"Step", absl::StrCat(job.step(), "/", job.total_steps())},
      {"Generation", absl::StrCat(job.generation())},
      {"Trainers", absl::StrCat(job.trainers())},
      {"Dataworkers", absl::StrCat(job.dataworkers())},
      {"Created", when(job.create_time_ms())},
      {"Updated", when(job.update_time_ms())},
      {"Client Request ID", job.client_request_id()},
  };
  size_t width = 0;
  for (const auto& [key, value] : fields) width = std::max(width, key.size());
  std::string out;
  for (const auto& [key, value] : fields) {
    absl::StrAppend(&out, key, ":", std::string(width - key.size() + 2, ' '),
                    value.empty() ? "<none>" : value, "\n");
  }
  if (job.has_runtime()) {
    const v1::JobRuntime& rt = job.runtime();
    char buf[160];
    absl::StrAppend(&out, "Runtime:\n");
    absl::StrAppend(&out, "  Trainers:      ",
                    rt.trainers().empty() ? "<none>" : absl::StrJoin(rt.trainers(), ", "), "\n");
    absl::StrAppend(&out, "  Dataworkers:   ",
                    rt.dataworkers().empty() ? "<none>" : absl::StrJoin(rt.dataworkers(), ", "),
                    "\n");
    absl::StrAppend(&out, "  Restarts:      ", rt.restarts(), "/", rt.max_restarts(), "\n");
    absl::StrAppend(&out, "  Batch ledger:  ", rt.batches_committed(), " committed, ",
                    rt.batches_delivered(), " delivered, ", rt.batches_leased(), " leased, ",
                    rt.batches_pending(), " pending of ", rt.batches_total(), "\n");
    if (rt.dataset_size() > 0) {
      absl::StrAppend(&out, "  Dataset:       ", rt.dataset_size(), " videos, ",
                      rt.batches_per_epoch(), " batches per epoch, manifest sha256 ",
                      rt.manifest_sha256().substr(0, 16), ", recipe ", rt.recipe_version(), "\n");
    } else {
      absl::StrAppend(&out, "  Dataset:       <not read yet>\n");
    }
    std::snprintf(buf, sizeof(buf), "%.3f", rt.data_wait_fraction());
    absl::StrAppend(&out, "  Data wait:     ", buf, " of step time\n");
    std::snprintf(buf, sizeof(buf), "%.2f clips/s; dataworkers %.2f clips/s per core; needs %.2f",
                  rt.clips_per_second(), rt.dataworker_clips_per_core_second(),
                  rt.dataworker_cores_needed());
    absl::StrAppend(&out, "  Throughput:    ", buf, " dataworker cores\n");
    if (rt.target_feature_std() > 0) {
      std::snprintf(buf, sizeof(buf), "%.4f", rt.target_feature_std());
      absl::StrAppend(&out, "  Target std:    ", buf,
                      " (per-channel std of the target features; near 0: collapse)\n");
    }
    if (job.kind() == "probe") {
      if (rt.val_dataset_size() > 0) {
        absl::StrAppend(&out, "  Validation:    ", rt.val_dataset_size(),
                        " videos, manifest sha256 ", rt.val_manifest_sha256().substr(0, 16), "\n");
      }
      absl::StrAppend(&out, "  Probed:        ",
                      rt.probe_checkpoint().empty() ? "<not resolved yet>" : rt.probe_checkpoint(),
                      rt.probe_checkpoint_step() >= 0 && !rt.probe_checkpoint().empty()
                          ? absl::StrCat(" (step ", rt.probe_checkpoint_step(), ")")
                          : "",
                      "\n");
      absl::StrAppend(&out, "  Phase:         ", rt.phase().empty() ? "<none>" : rt.phase(), "\n");
      for (const v1::ProbeResult& r : rt.probe_results()) {
        std::snprintf(buf, sizeof(buf),
                      "%.4f on %lld %s samples (train %.4f, loss %.4f, %lld steps)", r.top1(),
                      static_cast<long long>(r.samples()), r.evaluated_on().c_str(), r.train_top1(),
                      r.final_loss(), static_cast<long long>(r.steps()));
        absl::StrAppend(&out, absl::StrFormat("  Top-1 %-10s ", r.pooling() + ":"), buf, "\n");
        std::vector<std::string> per_class;
        for (int c = 0; c < r.per_class_top1_size(); ++c) {
          std::snprintf(buf, sizeof(buf), "%d: %.3f", c, r.per_class_top1(c));
          per_class.push_back(buf);
        }
        if (!per_class.empty()) {
          absl::StrAppend(&out, "    per class: ", absl::StrJoin(per_class, ", "), "\n");
        }
      }
    }
    absl::StrAppend(&out, "  Quarantined:   ", rt.quarantined_size(), " videos\n");
    for (const v1::QuarantinedVideo& q : rt.quarantined()) {
      absl::StrAppend(&out, "    #", q.sample(), " ", q.path(), ": ", q.reason(),
                      q.detail().empty() ? "" : " (" + q.detail() + ")", "\n");
    }
  }
  absl::StrAppend(&out, "Spec:\n");
  for (absl::string_view line : absl::StrSplit(absl::string_view(job.spec_yaml()), '\n')) {
    if (!line.empty()) absl::StrAppend(&out, "  ", line, "\n");
  }
  return out;
}

std::string WatchHeaderLine() {
  return absl::StrFormat("%-20s  %5s  %-10s  %-10s  %8s  %s", "TIME", "SEQ", "TYPE", "STATE",
                         "STEP", "MESSAGE");
}

std::string WatchEventLine(const v1::JobEvent& event) {
  return absl::StrFormat("%-20s  %5d  %-10s  %-10s  %8d  %s", Rfc3339(event.time_ms()), event.seq(),
                         event.type(), JobStateName(event.state()), event.step(), event.message());
}

}  // namespace vjepa::vjepactl
