/**
 * The ceiling of this runtime for `npm run bench -- dns`: a Node `dgram` responder that reads only the question
 * and answers every query with one fixed A record. Same socket setup as `boxcert dns` (one udp4 socket, the
 * same receive buffer), no store, no policy, no library: what is left is Node's own cost per datagram.
 * Usage: node --import tsx bench/dns-bare-responder.ts PORT
 */
import { createSocket } from "node:dgram";

const port = Number(process.argv[2]);
const socket = createSocket("udp4");
// 127.0.0.1, TTL 300: name pointer to the question (0xc00c), type A, class IN, TTL, RDLENGTH 4, RDATA.
const RECORD = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 1, 44, 0, 4, 127, 0, 0, 1]);

socket.on("message", (query, remote) => {
  if (query.length < 12 || query.readUInt16BE(4) !== 1) return;
  let end = 12;
  while (end < query.length && query[end] !== 0) {
    if (query[end]! > 63) return; // compression or garbage: a question never has it
    end += 1 + query[end]!;
  }
  end += 5; // the root label, QTYPE, QCLASS
  if (end > query.length) return;
  const response = Buffer.allocUnsafe(end + RECORD.length);
  query.copy(response, 0, 0, end);
  response[2] = 0x84 | (query[2]! & 0x01); // QR, AA, RD copied
  response[3] = 0;
  response.writeUInt32BE(0x00010000, 6); // ANCOUNT 1, NSCOUNT 0
  response.writeUInt16BE(0, 10); // ARCOUNT 0
  RECORD.copy(response, end);
  socket.send(response, remote.port, remote.address);
});

socket.bind(port, "127.0.0.1", () => {
  socket.setRecvBufferSize(4 * 1024 * 1024);
  console.log(`bare responder listening on 127.0.0.1:${port}`);
});
