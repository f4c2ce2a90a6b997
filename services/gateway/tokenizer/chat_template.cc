#include "services/gateway/tokenizer/chat_template.h"

#include "absl/status/status.h"
#include "common/status_macros.h"

namespace glm4v::tokenizer {

absl::string_view RoleTag(Role role) {
  switch (role) {
    case Role::kSystem:
      return "<|system|>";
    case Role::kUser:
      return "<|user|>";
    case Role::kAssistant:
      return "<|assistant|>";
    case Role::kObservation:
      return "<|observation|>";
  }
  return "";
}

absl::StatusOr<std::vector<TokenId>> Glm4StopIds(const Tokenizer& tokenizer) {
  std::vector<TokenId> out;
  for (absl::string_view name : {"<|endoftext|>", "<|user|>", "<|observation|>"}) {
    ASSIGN_OR_RETURN(TokenId id, tokenizer.SpecialId(name));
    out.push_back(id);
  }
  return out;
}

absl::StatusOr<ChatTemplate> ChatTemplate::Create(const Tokenizer* tokenizer) {
  ChatTemplate t(tokenizer);
  ASSIGN_OR_RETURN(t.gmask_, tokenizer->SpecialId("[gMASK]"));
  ASSIGN_OR_RETURN(t.sop_, tokenizer->SpecialId("<sop>"));
  ASSIGN_OR_RETURN(t.boi_, tokenizer->SpecialId("<|begin_of_image|>"));
  ASSIGN_OR_RETURN(t.eoi_, tokenizer->SpecialId("<|end_of_image|>"));
  ASSIGN_OR_RETURN(t.image_pad_, tokenizer->SpecialId("<|endoftext|>"));
  for (Role r : {Role::kSystem, Role::kUser, Role::kAssistant, Role::kObservation}) {
    ASSIGN_OR_RETURN(t.role_ids_[static_cast<int>(r)], tokenizer->SpecialId(RoleTag(r)));
  }
  ASSIGN_OR_RETURN(t.newline_ids_, tokenizer->EncodeOrdinary("\n"));
  ASSIGN_OR_RETURN(t.stop_ids_, Glm4StopIds(*tokenizer));
  return t;
}

absl::StatusOr<Prompt> ChatTemplate::Build(const std::vector<ChatMessage>& messages,
                                           bool add_generation_prompt) const {
  Prompt p;
  p.ids.push_back(gmask_);
  p.ids.push_back(sop_);
  std::string scratch;
  for (const ChatMessage& m : messages) {
    if (m.num_images < 0) return absl::InvalidArgumentError("negative image count");
    if (m.num_images > 0 && m.role != Role::kUser) {
      return absl::InvalidArgumentError("only user messages can carry images");
    }
    if (m.num_images > 0 && !m.metadata.empty()) {
      return absl::InvalidArgumentError("a message with images carries no metadata");
    }
    p.ids.push_back(role_ids_[static_cast<int>(m.role)]);
    if (m.num_images == 0) {
      scratch.assign(m.metadata);
      scratch.append("\n");
      scratch.append(m.text);
      RETURN_IF_ERROR(tokenizer_->EncodeOrdinaryTo(scratch, &p.ids));
      continue;
    }
    p.ids.insert(p.ids.end(), newline_ids_.begin(), newline_ids_.end());
    for (int k = 0; k < m.num_images; ++k) {
      p.image_boi_positions.push_back(p.ids.size());
      p.ids.push_back(boi_);
      p.ids.push_back(image_pad_);
      p.ids.push_back(eoi_);
    }
    RETURN_IF_ERROR(tokenizer_->EncodeOrdinaryTo(m.text, &p.ids));
  }
  if (add_generation_prompt) p.ids.push_back(role_ids_[static_cast<int>(Role::kAssistant)]);
  return p;
}

}  // namespace glm4v::tokenizer
