// The same app without the package: the value is component state.
import { useState } from 'react';

export const useCell = (key, initial) => useState(initial);
