/** Log areas and reading their tails (showlog, setloglevel). */
export { LogAreas, LOG_AREAS, isLogArea, isLogLevel, parseLevels, type LogArea, type LogSettings } from './areas.js';
export { tailLines, MAX_TAIL_LINES } from './tail.js';
