// RETURN_IF_ERROR / ASSIGN_OR_RETURN for absl::Status and absl::StatusOr.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define GLM4V_CONCAT_INNER_(a, b) a##b
#define GLM4V_CONCAT_(a, b) GLM4V_CONCAT_INNER_(a, b)

#define RETURN_IF_ERROR(expr)                    \
  do {                                           \
    ::absl::Status glm4v_status_ = (expr);       \
    if (!glm4v_status_.ok()) return glm4v_status_; \
  } while (0)

#define ASSIGN_OR_RETURN(lhs, expr) \
  GLM4V_ASSIGN_OR_RETURN_IMPL_(GLM4V_CONCAT_(glm4v_statusor_, __LINE__), lhs, expr)

#define GLM4V_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                 \
  if (!statusor.ok()) return statusor.status();           \
  lhs = std::move(statusor).value()
