export * from './event.ts';
export * from './avro.ts';
export * from './rabin.ts';
export * from './contract.ts';
export * from './kafka-message.ts';
