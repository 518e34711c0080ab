#include "api/request_metrics.h"

#include <type_traits>

namespace ember {

std::optional<ApiRequest> ApiRequestOf(const VmmAction& action) {
  return std::visit(
      [](const auto& a) -> std::optional<ApiRequest> {
        using A = std::decay_t<decltype(a)>;
        if constexpr (std::is_same_v<A, GetInstanceInfo>) return ApiRequest::kGetInstanceInfo;
        if constexpr (std::is_same_v<A, GetVersion>) return ApiRequest::kGetVersion;
        if constexpr (std::is_same_v<A, GetMachineConfig>) return ApiRequest::kGetMachineConfig;
        if constexpr (std::is_same_v<A, BootSourceConfig>) return ApiRequest::kPutBootSource;
        if constexpr (std::is_same_v<A, MachineConfig>) return ApiRequest::kPutMachineConfig;
        if constexpr (std::is_same_v<A, MachineConfigUpdate>)
          return ApiRequest::kPatchMachineConfig;
        if constexpr (std::is_same_v<A, DriveConfig>) return ApiRequest::kPutDrive;
        if constexpr (std::is_same_v<A, DriveUpdate>) return ApiRequest::kPatchDrive;
        if constexpr (std::is_same_v<A, NetworkInterfaceConfig>) return ApiRequest::kPutNetwork;
        if constexpr (std::is_same_v<A, NetworkInterfaceUpdate>) return ApiRequest::kPatchNetwork;
        if constexpr (std::is_same_v<A, VsockConfig>) return ApiRequest::kPutVsock;
        if constexpr (std::is_same_v<A, EntropyConfig>) return ApiRequest::kPutEntropy;
        if constexpr (std::is_same_v<A, SerialConfig>) return ApiRequest::kPutSerial;
        if constexpr (std::is_same_v<A, LoggerConfigFile>) return ApiRequest::kPutLogger;
        if constexpr (std::is_same_v<A, MetricsConfig>) return ApiRequest::kPutMetrics;
        // PUT /actions: InstanceStart, SendCtrlAltDel, FlushMetrics.
        if constexpr (std::is_same_v<A, InstanceStart> || std::is_same_v<A, SendCtrlAltDel> ||
                      std::is_same_v<A, FlushMetrics>)
          return ApiRequest::kPutActions;
        // GetVmConfig (GET /vm/config), PauseVm and ResumeVm (PATCH /vm): not counted.
        return std::nullopt;
      },
      action);
}

void CountApiRequest(const VmmAction& action, bool failed, bool deprecated, MetricsStore& store) {
  if (std::optional<ApiRequest> request = ApiRequestOf(action))
    CountApiRequest(*request, failed, store);
  if (deprecated) store.deprecated_api.deprecated_http_api_calls.Inc();
}

}  // namespace ember
