/** Every character a shell, a parser or a terminal could trip on. */
export const AWKWARD = `it's "quoted" $HOME \${X} $(id) \`id\` \\ \\n back\\slash\nnew line\r\n\ttab ! # = : ; & | < > * ? ~ % ' '' é ü 日本 😀 \u2028 end `;
