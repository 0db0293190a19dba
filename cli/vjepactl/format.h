// How vjepactl shows API objects: proto → JSON object (the one shape behind every output
// format), JSON → YAML text, and the kubectl-like tables. Field meanings: proto/vjepa/v1/.
#ifndef VJEPA_CLI_VJEPACTL_FORMAT_H_
#define VJEPA_CLI_VJEPACTL_FORMAT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "vjepa/v1/job.pb.h"
#include "vjepa/v1/worker.pb.h"

namespace vjepa::vjepactl {

enum class OutputFormat { kTable, kJson, kYaml };

// "table" | "json" | "yaml".
bool ParseOutputFormat(std::string_view text, OutputFormat* format);

// Unix milliseconds → "2024-05-01T12:34:56Z" (UTC, whole seconds); "" for 0 (never).
std::string Rfc3339(int64_t unix_ms);

// Enum value names as in the protos ("RUNNING", "ALIVE", "TRAINER"); the number for a value
// this build does not know.
std::string JobStateName(v1::JobState state);
std::string WorkerStateName(v1::WorkerState state);
std::string WorkerKindName(v1::WorkerKind kind);
bool IsTerminal(v1::JobState state);

// Output objects keep their keys in insertion order (id first), for people reading them.
using Json = nlohmann::ordered_json;

// The JSON shapes of the outputs. Ids and names are strings, enums their bare value names,
// times RFC 3339 strings. The job's spec is not included (see YamlToJson).
Json JobToJson(const v1::Job& job);
Json WorkerToJson(const v1::Worker& worker);
Json JobEventToJson(const v1::JobEvent& event);

// A YAML document (the canonical spec) → the same tree as JSON: maps, sequences, and scalars
// typed as YAML 1.2's core schema reads them (null, bool, int, float, else string; quoted
// scalars stay strings). INVALID_ARGUMENT for malformed YAML.
absl::StatusOr<Json> YamlToJson(std::string_view yaml);

// JSON → block-style YAML text ending in a newline; strings that YAML would read as another
// type ("123", "true", "") are quoted, so YamlToJson(JsonToYaml(j)) == j.
std::string JsonToYaml(const Json& value);

// kubectl-like human durations: "45s", "3m12s", "17m", "5h3m", "2d4h", "12d".
std::string HumanDuration(absl::Duration d);

// Left-aligned columns separated by three spaces, a header row first, every line ending in
// '\n'. Empty cells print as "<none>".
std::string RenderTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows);

// The tables of `get jobs` (ID NAME STATE OWNER KIND STEP AGE) and `get workers`
// (ID NAME KIND STATE ADDRESS JOB LAST-HEARTBEAT); ages are relative to `now`.
std::string JobsTable(const std::vector<v1::Job>& jobs, absl::Time now);
std::string WorkersTable(const std::vector<v1::Worker>& workers, absl::Time now);

// `describe job` in table mode: a "Key: value" block, then the spec YAML indented under "Spec:".
std::string DescribeJobText(const v1::Job& job, absl::Time now);

// One line per event for `watch` in table mode (no trailing newline); the header matches.
std::string WatchHeaderLine();
std::string WatchEventLine(const v1::JobEvent& event);

}  // namespace vjepa::vjepactl

#endif  // VJEPA_CLI_VJEPACTL_FORMAT_H_
