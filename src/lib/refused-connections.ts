import { Socket } from 'node:net'
import type { ServerResponse } from 'node:http'

/**
 * Backpressure on the connections of a password flood. A refusal is cheap, but a client that
 * ignores Retry-After sends the next login the moment it arrives, and Node reads every
 * connection in turn: 200 such connections took ~95% of the event loop's turns from the
 * verifies beside them however cheap each refusal was made (bench, issue 6). So a connection
 * whose login was refused as overloaded is not read again until a login sent on it could be
 * admitted (the gate's `whenRoom`), and never longer than the Retry-After it was given. The
 * refusal itself still goes out at once; other connections are read as usual.
 *
 * When room comes, only as many connections are read again as the gate has places, longest
 * paused first: all of them at once were each admitted by the early check, cost their
 * statements, and most were then refused by the gate anyway, every time room came (bench:
 * /health p99 50 ms in the flood). The others wait out their pause, whose length is spread
 * over its second half so that connections refused together do not all come back together.
 */
export interface RefusedConnections {
  /** Stops reading the connection of `response` once it has been sent. */
  pauseAfter (response: ServerResponse): void
  /** Reads every paused connection again, e.g. when the service shuts down. */
  resumeAll (): void
  readonly paused: number
}

export interface RefusedConnectionsOptions {
  whenRoom: (listener: () => void) => void
  /** How many more logins the gate would take now. */
  places: () => number
  maxPauseMs: number
}

interface Pause { timer: NodeJS.Timeout, onClose: () => void }

export function createRefusedConnections ({ whenRoom, places, maxPauseMs }: RefusedConnectionsOptions): RefusedConnections {
  const paused = new Map<Socket, Pause>()
  let waitingForRoom = false

  function resume (socket: Socket) {
    const pause = paused.get(socket)
    if (pause === undefined) return
    paused.delete(socket)
    clearTimeout(pause.timer)
    socket.off('close', pause.onClose)
    if (!socket.destroyed) socket.resume()
  }

  function resumeAll () {
    for (const socket of [...paused.keys()]) resume(socket)
  }

  function resumeLongestPaused () {
    waitingForRoom = false
    let room = places()
    // A Map iterates in insertion order: the longest paused first.
    for (const socket of [...paused.keys()]) {
      if (room-- <= 0) break
      resume(socket)
    }
  }

  function pause (socket: Socket) {
    if (socket.destroyed || paused.has(socket)) return
    socket.pause()
    const onClose = () => { resume(socket) }
    socket.once('close', onClose)
    const pauseMs = maxPauseMs * (0.5 + Math.random() / 2)
    paused.set(socket, { timer: setTimeout(() => { resume(socket) }, pauseMs).unref(), onClose })
    if (!waitingForRoom) {
      waitingForRoom = true
      whenRoom(resumeLongestPaused)
    }
  }

  return {
    pauseAfter (response) {
      const socket = response.socket
      // Only a real connection (app.inject's has nothing to pause).
      if (!(socket instanceof Socket)) return
      // After a response Node resumes the socket on the next tick to discard an unread body,
      // which would undo a pause made any earlier.
      response.once('finish', () => { setImmediate(pause, socket) })
    },
    resumeAll,
    get paused () { return paused.size }
  }
}
