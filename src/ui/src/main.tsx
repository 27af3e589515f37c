import '@mantine/core/styles.css'
import { createTheme, MantineProvider } from '@mantine/core'
import { StrictMode } from 'react'
import { createRoot } from 'react-dom/client'
import { App } from './App.tsx'
import { SessionProvider } from './lib/session.tsx'

const theme = createTheme({ primaryColor: 'indigo', defaultRadius: 'md' })
const root = document.getElementById('root')
if (root === null) throw new Error('no #root element')

createRoot(root).render(
  <StrictMode>
    <MantineProvider theme={theme} defaultColorScheme="auto">
      <SessionProvider>
        <App />
      </SessionProvider>
    </MantineProvider>
  </StrictMode>,
)
