import CPyramidABI
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import PyramidCache
import PyramidLoader
import Synchronization

// MARK: Release tickets (for finalizers that must not run interpreted code)

/// What a ticket redeems: a batch of a loader, or (batch 0) the loader's close.
private struct Ticket: Sendable { var loader: UInt; var batch: UInt64 }

/// Tickets handed out and not yet redeemed, by number: a ticket is a number, not a pointer, so
/// redeeming one twice, or one never handed out, finds nothing and does nothing (as handles do).
private let tickets = Mutex<[UInt: Ticket]>([:])
private let nextTicket = Atomic<UInt>(0)

/// Reads a capsule's pointer (Python: PyCapsule_GetPointer), set by the binding.
public typealias CapsuleGetter = @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>?) -> UnsafeMutableRawPointer?
private let capsuleGetter = Atomic<UInt>(0)
/// Static, so that capsules may name it for as long as the process lives.
private let capsuleName: StaticString = "pyramid.ticket"
private var capsuleNamePointer: UnsafePointer<CChar> { UnsafeRawPointer(capsuleName.utf8Start).assumingMemoryBound(to: CChar.self) }

@_cdecl("pyramid_ticket")
public func bridgeTicket(_ loader: OpaquePointer?, _ batchID: UInt64) -> UnsafeMutableRawPointer? {
    guard let loader else { return nil }
    let number = nextTicket.add(1, ordering: .relaxed).newValue
    let ticket = Ticket(loader: UInt(bitPattern: loader), batch: batchID)
    tickets.withLock { $0[number] = ticket }
    return UnsafeMutableRawPointer(bitPattern: number)
}

@_cdecl("pyramid_redeem_ticket")
public func bridgeRedeemTicket(_ raw: UnsafeMutableRawPointer?) {
    guard let raw, let t = tickets.withLock({ $0.removeValue(forKey: UInt(bitPattern: raw)) }) else { return }
    let loader = OpaquePointer(bitPattern: t.loader)
    _ = t.batch == 0 ? bridgeClose(loader, nil) : bridgeRelease(loader, t.batch, nil)
}

@_cdecl("pyramid_set_capsule_getter")
public func bridgeSetCapsuleGetter(_ getter: CapsuleGetter?) {
    capsuleGetter.store(getter.map { UInt(bitPattern: unsafeBitCast($0, to: Int.self)) } ?? 0, ordering: .releasing)
}

@_cdecl("pyramid_capsule_destructor")
public func bridgeCapsuleDestructor(_ capsule: UnsafeMutableRawPointer?) {
    let bits = capsuleGetter.load(ordering: .acquiring)
    guard bits != 0 else { return }  // no getter: the ticket cannot be read (a leak, never a crash)
    let getter = unsafeBitCast(Int(bitPattern: bits), to: CapsuleGetter.self)
    bridgeRedeemTicket(getter(capsule, capsuleNamePointer))
}

@_cdecl("pyramid_capsule_name")
public func bridgeCapsuleName() -> UnsafePointer<CChar> { capsuleNamePointer }
