#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "emolive/errors.hpp"
#include "emolive/model_card.hpp"

using namespace emolive;
using nlohmann::json;

namespace {

json io_of(const FileIo& io) {
  json out = {{"inputs", json::object()}, {"outputs", json::object()}};
  for (const auto& t : io.inputs) out["inputs"][t.name] = t.shape;
  for (const auto& t : io.outputs) out["outputs"][t.name] = t.shape;
  return out;
}

// A card that follows docs/model-contract.md, with z 16, 1 layer, hidden 32.
json valid_card() {
  ModelCard sizes;
  sizes.z = 16;
  sizes.layers = 1;
  sizes.hidden = 32;
  json card = {
      {"format", "emolive-cvae"},
      {"format_version", 1},
      {"name", "test"},
      {"grid", {{"steps_per_beat", 4}, {"beats_per_bar", 4}, {"steps_per_bar", 16}, {"segment_bars", 2}}},
      {"pitch", {{"low", 21}, {"high", 108}, {"count", 88}}},
      {"features", {{"layout", {"onset", "hold", "velocity"}}, {"size", 264}}},
      {"sizes", {{"z", 16}, {"layers", 1}, {"hidden", 32}, {"segment_steps", 32}}},
      {"emotions", {{"order", {"Q1", "Q2", "Q3", "Q4"}}}},
      {"files", {{"encoder", "encoder.onnx"}, {"decoder_init", "decoder_init.onnx"},
                 {"decoder_step", "decoder_step.onnx"}}},
      {"opset", 18},
      {"sampling", {{"onset_threshold", 0.4}, {"hold_threshold", 0.5}, {"temperature", 1.0}}},
  };
  for (const auto& role : model_roles()) card["io"][role] = io_of(expected_io(role, sizes));
  return card;
}

std::string error_of(const json& card) {
  try {
    parse_model_card(card.dump(), "card.json");
  } catch (const ModelError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("a card following the contract parses") {
  ModelCard card = parse_model_card(valid_card().dump(), "card.json");
  CHECK(card.z == 16);
  CHECK(card.layers == 1);
  CHECK(card.hidden == 32);
  CHECK(card.segment_steps == 32);
  CHECK(card.onset_threshold == Approx(0.4f));
  CHECK(card.files.at("decoder_step") == "decoder_step.onnx");
  CHECK(card.io.at("decoder_step").inputs.size() == 4);
}

TEST_CASE("card errors name the key, expected and found") {
  json card = valid_card();
  card["format_version"] = 2;
  CHECK_THAT(error_of(card), Catch::Contains("format_version") && Catch::Contains("found 2"));

  card = valid_card();
  card["sizes"].erase("hidden");
  CHECK_THAT(error_of(card), Catch::Contains("sizes.hidden") && Catch::Contains("missing"));

  card = valid_card();
  card["pitch"]["count"] = 128;
  CHECK_THAT(error_of(card), Catch::Contains("pitch.count") && Catch::Contains("expected 88"));

  card = valid_card();
  card["io"]["decoder_step"]["inputs"]["state"] = {1, -1, 64};
  CHECK_THAT(error_of(card), Catch::Contains("io.decoder_step.inputs.state") &&
                                 Catch::Contains("[1, -1, 32]") && Catch::Contains("[1, -1, 64]"));

  card = valid_card();
  card["io"]["decoder_init"]["outputs"].erase("state");
  card["io"]["decoder_init"]["outputs"]["h0"] = {1, -1, 32};
  CHECK_THAT(error_of(card), Catch::Contains("lacks tensor 'state'"));

  card = valid_card();
  card["io"]["encoder"]["inputs"]["extra"] = {-1, 3};
  CHECK_THAT(error_of(card), Catch::Contains("unexpected tensor 'extra'"));

  card = valid_card();
  card["sampling"]["hold_threshold"] = 1.5;
  CHECK_THAT(error_of(card), Catch::Contains("sampling.hold_threshold"));

  card = valid_card();
  card["format"] = "something-else";
  CHECK_THAT(error_of(card), Catch::Contains("emolive-cvae"));
}

TEST_CASE("the optional onset cap is read and checked") {
  json card = valid_card();
  CHECK(parse_model_card(card.dump(), "card.json").max_onsets_per_step == 0);
  card["sampling"]["max_onsets_per_step"] = 7;
  CHECK(parse_model_card(card.dump(), "card.json").max_onsets_per_step == 7);
  card["sampling"]["max_onsets_per_step"] = -1;
  CHECK_THAT(error_of(card), Catch::Contains("sampling.max_onsets_per_step"));
}

TEST_CASE("the optional tonic is read and checked") {
  json card = valid_card();
  CHECK(parse_model_card(card.dump(), "card.json").tonic == -1);
  card["tonic"] = nullptr;
  CHECK(parse_model_card(card.dump(), "card.json").tonic == -1);
  card["tonic"] = 0;
  CHECK(parse_model_card(card.dump(), "card.json").tonic == 0);
  card["tonic"] = 11;
  CHECK(parse_model_card(card.dump(), "card.json").tonic == 11);
  card["tonic"] = 12;
  CHECK_THAT(error_of(card), Catch::Contains("'tonic' must be a pitch class 0..11"));
  card["tonic"] = "C";
  CHECK_THAT(error_of(card), Catch::Contains("'tonic' must be an integer"));
}

TEST_CASE("the optional batch step is read and checked against decoder_step's tensors") {
  json card = valid_card();
  CHECK(parse_model_card(card.dump(), "card.json").files.count(kBatchStepRole) == 0);
  card["files"][kBatchStepRole] = "batch.onnx";
  CHECK_THAT(error_of(card), Catch::Contains("io.decoder_step_batch") &&
                                 Catch::Contains("missing"));
  card["io"][kBatchStepRole] = card["io"]["decoder_step"];
  const ModelCard parsed = parse_model_card(card.dump(), "card.json");
  CHECK(parsed.files.at(kBatchStepRole) == "batch.onnx");
  CHECK(parsed.io.at(kBatchStepRole).outputs.size() == 4);
  card["io"][kBatchStepRole]["inputs"]["z"] = {-1, 17};
  CHECK_THAT(error_of(card), Catch::Contains("io.decoder_step_batch.inputs.z") &&
                                 Catch::Contains("[-1, 16]"));
  card["io"][kBatchStepRole] = card["io"]["encoder"];
  CHECK_THAT(error_of(card), Catch::Contains("lacks tensor 'prev'"));
}

TEST_CASE("text that is not a JSON object is refused") {
  CHECK_THROWS_AS(parse_model_card("{not json", "x.json"), ModelError);
  CHECK_THROWS_AS(parse_model_card("[1,2]", "x.json"), ModelError);
}

TEST_CASE("a missing card file is a ModelError naming the path") {
  CHECK_THROWS_WITH(load_model_card("/nonexistent/dir"), Catch::Contains("/nonexistent/dir/model_card.json"));
}

TEST_CASE("integers too large for an int are refused, not wrapped") {
  json card = valid_card();
  card["sizes"]["segment_steps"] = (int64_t(1) << 32) + 32;  // get<int>() read 32
  CHECK_THAT(error_of(card), Catch::Contains("segment_steps") && Catch::Contains("out of range"));
  card = valid_card();
  card["tonic"] = int64_t(1) << 32;  // read 0
  CHECK_THAT(error_of(card), Catch::Contains("tonic") && Catch::Contains("out of range, found 4294967296"));
  card = valid_card();
  card["sampling"]["max_onsets_per_step"] = UINT64_MAX;
  CHECK_THAT(error_of(card), Catch::Contains("out of range, found 18446744073709551615"));
  card = valid_card();
  card["sampling"]["max_onsets_per_step"] = -(int64_t(1) << 40);
  CHECK_THAT(error_of(card), Catch::Contains("out of range"));
  card = valid_card();
  card["io"]["decoder_step"]["inputs"]["state"] = {1, UINT64_MAX, 32};  // read as -1 (dynamic)
  CHECK_THAT(error_of(card), Catch::Contains("io.decoder_step.inputs.state") &&
                                 Catch::Contains("found 18446744073709551615"));
}

TEST_CASE("a deeply nested card is refused, a large value described, not printed") {
  // json::dump() recurses once per level: the error message overflowed the stack (a crash).
  json card = valid_card();
  card["features"]["layout"] = "DEEP";
  std::string text = card.dump();  // the deep value goes in as text: dump() would recurse too
  text.replace(text.find("\"DEEP\""), 6, std::string(200000, '[') + std::string(200000, ']'));
  std::string error;
  try {
    parse_model_card(text, "card.json");
  } catch (const ModelError& e) {
    error = e.what();
  }
  // Refused while parsing since 2026-12-06: Python's json, which reads the card again, gave
  // RecursionError at 1,000 levels.
  CHECK_THAT(error, Catch::Contains("card.json is nested deeper than 64 levels"));
  card = valid_card();
  json wide = json::array();
  for (int i = 0; i < 100000; ++i) wide.push_back(i);
  card["features"]["layout"] = wide;  // large: described
  CHECK_THAT(error_of(card), Catch::Contains("an array of 100000 items (too large or deep to show)"));
  card = valid_card();
  card["features"]["layout"] = {"onset", "hold"};  // small: shown as it is
  CHECK_THAT(error_of(card), Catch::Contains("found [\"onset\",\"hold\"]"));
}
