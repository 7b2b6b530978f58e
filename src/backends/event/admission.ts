/** Moved to src/backend/admission.ts (shared by the event and sqlite backends). */
export { Admission, type Ticket } from '../../backend/admission.js';
