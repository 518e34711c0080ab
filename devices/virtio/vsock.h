// virtio-vsock (virtio 1.x section 5.10) with Firecracker's host side: no vhost, the guest's
// AF_VSOCK stream sockets are mediated to AF_UNIX stream sockets on the host
// (firecracker-facts.md 3.4, Firecracker's docs/vsock.md):
//  - host-initiated: a host process connects to `uds_path` and writes "CONNECT <port>\n"; the
//    device sends OP_REQUEST from (CID 2, a local port in [2^30, 2^31)) to (guest_cid, port)
//    and, on the guest's OP_RESPONSE, writes "OK <local_port>\n" back; on RST or after 2000 ms
//    the host socket is closed;
//  - guest-initiated: an OP_REQUEST to host port P connects to `<uds_path>_P`; OP_RESPONSE on
//    success, OP_RST otherwise.
// Data moves with the protocol's credit flow control (5.10.6.3): host data goes to the guest
// only as far as the guest's advertised buffer allows (the socket is not read otherwise, so no
// data is ever dropped), and guest data beyond the buf_alloc we advertise is a protocol violation.
//
// Threading: everything runs on the VMM thread inside ProcessQueue/OnEventFd (the transport's
// lock held); every socket is non-blocking, nothing here waits.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "devices/virtio/virtio_device.h"
#include "vmm/base/unique_fd.h"

namespace ember::virtio {

// 5.10.6 and Firecracker's vsock/defs.rs.
inline constexpr uint64_t kVsockHostCid = 2;
inline constexpr uint64_t kVsockMinGuestCid = 3;             // 0, 1 and 2 are reserved (5.10.4)
inline constexpr size_t kVsockHeaderBytes = 44;              // struct virtio_vsock_hdr
inline constexpr uint32_t kVsockMaxPacketBytes = 64 * 1024;  // MAX_PKT_BUF_SIZE
// Our buf_alloc: what a guest may send on a connection beyond what we forwarded to the host
// socket (and so what we may have to hold per connection when the host does not read). Linux's
// default (VIRTIO_VSOCK_DEFAULT_BUF_SIZE), not Firecracker's 64 KiB CONN_TX_BUF_SIZE: with
// buf_alloc no larger than one 64 KiB packet a guest has one packet in flight and waits a round
// trip through the device for every one.
inline constexpr uint32_t kVsockBufAlloc = 256 * 1024;
// A CREDIT_UPDATE goes out once the guest believes we have no more than this much room left
// (half the buffer, so that a streaming guest hears of the room we made before it runs out;
// Firecracker's threshold is "less than 4 KiB" of its 64 KiB).
inline constexpr uint32_t kVsockCreditUpdateThreshold = kVsockBufAlloc / 2;
inline constexpr uint32_t kVsockMaxConnections = 1023;  // MAX_CONNECTIONS
inline constexpr uint32_t kVsockTimeoutMs = 2000;       // CONN_REQUEST/SHUTDOWN_TIMEOUT_MS
// The host's "CONNECT <port>\n" is read into a 32-byte buffer (Firecracker muxer.rs).
inline constexpr size_t kVsockConnectLineMax = 32;
// Firecracker allocates host-side ports for host-initiated connections in [2^30, 2^31).
inline constexpr uint32_t kVsockLocalPortFirst = uint32_t{1} << 30;

inline constexpr uint16_t kVsockTypeStream = 1;
enum VsockOp : uint16_t {
  kVsockOpRequest = 1,
  kVsockOpResponse = 2,
  kVsockOpRst = 3,
  kVsockOpShutdown = 4,
  kVsockOpRw = 5,
  kVsockOpCreditUpdate = 6,
  kVsockOpCreditRequest = 7,
};
inline constexpr uint32_t kVsockShutdownRcv = 1;
inline constexpr uint32_t kVsockShutdownSend = 2;
inline constexpr uint32_t kVsockEventTransportReset = 0;  // struct virtio_vsock_event id

// struct virtio_vsock_hdr (5.10.6), little-endian on the wire as on every host ember runs on.
struct __attribute__((packed)) VsockHeader {
  uint64_t src_cid = 0;
  uint64_t dst_cid = 0;
  uint32_t src_port = 0;
  uint32_t dst_port = 0;
  uint32_t len = 0;
  uint16_t type = 0;
  uint16_t op = 0;
  uint32_t flags = 0;
  uint32_t buf_alloc = 0;
  uint32_t fwd_cnt = 0;
};
static_assert(sizeof(VsockHeader) == kVsockHeaderBytes);

struct VsockOptions {
  uint64_t guest_cid = 0;
  std::string uds_path;
  // Firecracker's fixed values; tests lower them to reach the limits quickly.
  uint32_t max_connections = kVsockMaxConnections;
  uint32_t timeout_ms = kVsockTimeoutMs;
};

// What a snapshot keeps. As Firecracker, a snapshot resets the vsock transport (the guest is
// sent TRANSPORT_RESET and drops its connections; its listeners survive), so no connection is
// saved: a restored device starts with none. `uds_path` is informational (a restore may bind a
// different path, Firecracker's vsock_override); the CID must match the device's.
struct VsockState {
  uint64_t guest_cid = 0;
  std::string uds_path;
  uint32_t last_local_port = kVsockLocalPortFirst - 1;  // round-robin position
};

class Vsock : public VirtioDevice {
 public:
  // Binds and listens on uds_path: an existing path is an error naming it (ember never deletes
  // a file it did not create); guest_cid must be >= 3.
  static Result<std::shared_ptr<Vsock>> Create(const VsockOptions& options);
  // Closes every socket and unlinks uds_path if it is still the socket we created. Does not call
  // the EventWatcher (the event loop may already be gone).
  ~Vsock() override;

  uint32_t device_id() const override { return kDeviceIdVsock; }
  // VIRTIO_F_IN_ORDER holds: every queue's buffers are used in the order they were made
  // available (a chain is either used at once or put back with UndoPop).
  static constexpr int kFInOrder = 35;
  uint64_t offered_features() const override { return Bit(kFVersion1) | Bit(kFInOrder); }
  size_t queue_count() const override { return 3; }  // rx 0, tx 1, event 2
  void Activate(const ActiveQueues& active) override;
  // Drops every connection (the driver's sockets are gone with it).
  void Reset() override;
  void ProcessQueue(size_t index) override;
  // Watches the listening socket and the timer of connect/shutdown deadlines.
  Status AttachEvents(EventWatcher* watcher) override;
  void OnEventFd(int fd, uint32_t events) override;

  // Puts VIRTIO_VSOCK_EVENT_TRANSPORT_RESET in the event queue (Firecracker does so on snapshot
  // create) and drops every connection, since the guest drops its side without an RST. Call with
  // the transport's lock held.
  Status SendTransportReset();

  VsockState Save() const;
  // Applies a saved state to a device created from the same configuration (before the
  // transport is restored). Starts with no connections.
  Status Restore(const VsockState& state);

  uint64_t guest_cid() const { return guest_cid_; }
  const std::string& uds_path() const { return uds_path_; }
  // Counters (read from any thread for metrics and logs); guest garbage is errors().
  uint64_t connections_opened() const { return connections_opened_; }
  uint64_t active_connections() const { return active_connections_; }
  // Malformed host-side input: bad CONNECT lines, clients gone or silent mid-line.
  uint64_t host_errors() const { return host_errors_; }

 private:
  struct Connection;
  // A host client that has connected to uds_path but not yet finished its CONNECT line.
  struct HostClient {
    UniqueFd fd;
    std::string line;
    uint64_t deadline_us = 0;
  };
  using ConnKey = uint64_t;  // local (host) port << 32 | peer (guest) port

  explicit Vsock(const VsockOptions& options);
  Status Listen();

  // Queue work.
  void Kick(bool tx);
  void ProcessTx();
  void ProcessRx();
  // Writes the next packet `conn` owes the guest into `chain`; returns its length, 0 for none.
  // Data read at once into further chains makes further RW packets, in rx_more_.
  uint32_t FillRx(Connection& conn, const DescriptorChain& chain, bool* remove);
  // Reads conn's socket into `first` (first_room bytes after the header) and the rx chains the
  // guest posted after it, within `credit` and one packet's worth; returns what readv returned.
  // The further chains that got data are in rx_more_ (their payload bytes in len, together
  // rx_more_bytes_); the others are put back.
  ssize_t ReadHostData(Connection& conn, const DescriptorChain& first, uint32_t first_room,
                       uint32_t credit);
  void HandleGuestPacket(const VsockHeader& h, const DescriptorChain& chain);
  void HandleGuestConnect(const VsockHeader& h);
  void HandleGuestData(Connection& conn, const VsockHeader& h, const DescriptorChain& chain);

  // Host side.
  void AcceptHostClients();
  void ReadConnectLine(int fd);
  void DropHostClient(int fd, const char* why);
  void OnConnectionEvent(Connection& conn, uint32_t events);
  bool FlushTxBuf(Connection& conn);

  // Connection bookkeeping.
  void Update(Connection& conn);
  void Kill(Connection& conn);
  void Remove(Connection& conn);
  void DropAll();
  void EnqueueRst(const VsockHeader& to_answer);
  uint32_t AllocateLocalPort();
  void ArmTimer(uint64_t deadline_us);
  void OnTimer();
  void WatchFd(int fd, uint32_t events, uint32_t* watched);

  uint64_t guest_cid_;
  std::string uds_path_;
  uint32_t max_connections_;
  uint64_t timeout_us_;
  UniqueFd listener_;
  dev_t listener_dev_ = 0;  // what we bound, so the destructor unlinks only our own socket
  ino_t listener_ino_ = 0;
  UniqueFd timer_;
  uint64_t timer_deadline_us_ = 0;  // 0: disarmed

  std::map<ConnKey, std::unique_ptr<Connection>> conns_;
  std::unordered_map<int, ConnKey> conn_by_fd_;
  std::map<int, HostClient> host_clients_;
  std::set<uint32_t> local_ports_;
  uint32_t last_local_port_ = kVsockLocalPortFirst - 1;
  // Connections owing the guest a packet, served round robin; a key may be stale.
  std::deque<ConnKey> rx_ready_;
  // RSTs not tied to a live connection (answers to strays, killed connections).
  std::deque<VsockHeader> rst_queue_;
  bool tx_stalled_ = false;  // tx stopped because rst_queue_ is full
  // Scratch of ReadHostData, kept to reuse its memory: the iovecs of one read and the further
  // rx chains it filled (the first rx_more_count_ entries; len is their used length once FillRx
  // has written their headers).
  struct RxChain {
    DescriptorChain chain;
    uint32_t len = 0;
  };
  std::vector<iovec> rx_iov_;
  std::vector<RxChain> rx_more_;
  size_t rx_more_count_ = 0;
  uint32_t rx_more_bytes_ = 0;

  std::atomic<uint64_t> connections_opened_{0};
  std::atomic<uint64_t> active_connections_{0};
  std::atomic<uint64_t> host_errors_{0};
};

}  // namespace ember::virtio
