// The shaped link's own baseline (link.ts): a TCP sink inside the namespace that only
// counts bytes, so a push to it times what the link carries and nothing else. Listens on
// port 0 at argv[2] and prints the port; per connection the first 8 bytes are the length
// to follow (big-endian), and it answers one byte once it has all of them, so the sender's
// clock runs until every byte has crossed.
import { createServer } from 'node:net';

const server = createServer((socket) => {
  let head = Buffer.alloc(0);
  let left = Number.NaN;
  socket.on('data', (chunk: Buffer) => {
    if (Number.isNaN(left)) {
      // The length may arrive split across chunks.
      head = Buffer.concat([head, chunk]);
      if (head.length < 8) return;
      left = Number(head.readBigUInt64BE(0)) - (head.length - 8);
    } else {
      left -= chunk.length;
    }
    if (left <= 0) socket.end(Buffer.of(1));
  });
  // The sender closes once answered; a reset then is no failure of the count.
  socket.on('error', () => undefined);
});
server.listen(0, process.argv[2], () => {
  const address = server.address();
  process.stdout.write(`${typeof address === 'object' && address !== null ? address.port : ''}\n`);
});
